"""The ingest loop (no transport): messages read and stored in batches, each one's ``done``
called only after its batch is committed, so a transport acknowledges only what is stored.

A batch the database refuses as a whole (a row Postgres will not take) is stored one message at
a time, and a message refused on its own is stored as rejected with the database's reason: one
bad message never holds up the others. A database that is away makes the batch wait and try
again; nothing is acknowledged meanwhile, so the broker keeps the messages.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from prometheus_client import Counter

from acoustack_hub import payloads
from acoustack_hub.payloads import Accepted, Incoming, Rejected
from acoustack_hub.store import HubStore

log = logging.getLogger(__name__)

MESSAGES = Counter(
    "acoustack_hub_messages", "Messages the hub took, by transport and outcome", ["via", "outcome"]
)


@dataclass
class Pending:
    incoming: Incoming
    done: Callable[[Accepted | Rejected], None]


LIVE, BACKLOG = 0, 1  # the order the ingest takes what is waiting


class Ingest:
    def __init__(
        self, store: HubStore, *, batch_size: int, batch_wait_s: float, max_message_bytes: int
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_s
        self.max_message_bytes = max_message_bytes
        # Live messages first, a backlog's when none waits; in arrival order within each.
        self.queue: queue.PriorityQueue[tuple[int, int, Pending]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hub-ingest", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stores what was handed in, then ends."""
        self._stop.set()
        self._thread.join(timeout_s)

    def submit(
        self,
        incoming: Incoming,
        done: Callable[[Accepted | Rejected], None],
        priority: int = LIVE,
    ) -> None:
        self.queue.put((priority, next(self._order), Pending(incoming, done)))

    def _next_batch(self) -> list[Pending]:
        try:
            first = self.queue.get(timeout=0.2)[2]
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.batch_wait_s
        while len(batch) < self.batch_size:
            left = deadline - time.monotonic()
            try:
                got = self.queue.get(timeout=left) if left > 0 else self.queue.get_nowait()
                batch.append(got[2])
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while not (self._stop.is_set() and self.queue.empty()):
            batch = self._next_batch()
            if batch:
                self.store_and_ack(batch)

    def store_and_ack(self, batch: list[Pending]) -> None:
        items = [payloads.read(p.incoming, self.max_message_bytes) for p in batch]
        delay = 0.5
        while True:
            try:
                self._store(items)
                break
            except psycopg.OperationalError as exc:
                # The database away: nothing is acknowledged; the same batch goes again.
                log.warning("database unavailable, batch of %d waits: %s", len(items), exc)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
        log.debug("batch of %d stored", len(batch))
        for pending, item in zip(batch, items, strict=True):
            outcome = "rejected" if isinstance(item, Rejected) else "taken"
            MESSAGES.labels(pending.incoming.via, outcome).inc()
            pending.done(item)

    def _store(self, items: list[Accepted | Rejected]) -> None:
        try:
            self.store.store_batch(items)
            return
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            log.warning("batch of %d refused (%s): storing one by one", len(items), exc)
        for index, item in enumerate(items):
            try:
                self.store.store_batch([item])
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                assert isinstance(item, Accepted)  # a rejected row holds only text and sizes
                items[index] = Rejected(
                    message_id=str(item.id),
                    device_id=item.device_id,
                    via=item.via,
                    topic=None,
                    reason=f"the database refused it: {str(exc).splitlines()[0][:500]}",
                    size_bytes=len(item.payload.encode()),
                    payload_head=item.payload[: payloads.HEAD_BYTES],
                    received_at=item.received_at,
                )
                self.store.store_batch([items[index]])
