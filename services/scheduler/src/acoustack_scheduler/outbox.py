"""The outbox as `acoustack messages` sees it: counts by delivery state, the newest dead letters
with their last response, and retrying them. Storage keeps the state; this only asks it."""

from __future__ import annotations

from collections.abc import Sequence

from acoustack import schema
from acoustack.clients import StoreClient
from acoustack.errors import InvalidArgumentError
from acoustack.v1 import control_pb2

MAX_DEAD_LIMIT = 1000


class OutboxControl:
    def __init__(self, store: StoreClient) -> None:
        self.store = store

    def overview(self, dead_limit: int) -> control_pb2.GetOutboxResponse:
        if not 0 <= dead_limit <= MAX_DEAD_LIMIT:
            raise InvalidArgumentError(
                f"dead_limit: {dead_limit} is not within 0..{MAX_DEAD_LIMIT}"
            )
        reply = control_pb2.GetOutboxResponse(counts=self.store.count_messages())
        if dead_limit and reply.counts.dead:
            reply.dead_letters.extend(
                self.store.list_messages(
                    schema.MessageState.DEAD, limit=dead_limit, newest_first=True
                )
            )
        return reply

    def retry(self, message_ids: Sequence[str], *, all_dead: bool) -> list[str]:
        """Due at the next run; storage names an unknown id or a sent message, changing none."""
        return self.store.retry_messages(message_ids, all_dead=all_dead)
