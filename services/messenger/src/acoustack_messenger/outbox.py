"""The outbox as the send task template sees it: a MessageStore over the storage service.

One run takes at most ``limit`` due messages in the configured order, read a page at a time
(keyset pages, ``FIRST_PAGE`` then ``PAGE``), the next while this one is sent. Storage keeps a
message unsent until one of its responses is a success, and keeps every response. The last
response of a try without a success carries its outcome (``acoustack_messenger.delivery``): the
message waits before its next try, and one refused for good too often becomes a dead letter.

The send task template may hand the messengers a window of messages at once (an MQTT messenger
keeps them in flight together): responses are matched to their message by id, and a message's
outcome is judged once every messenger has answered for it.

Responses are stored in batches (``RESPONSE_BATCH``, the most one StoreResponses call takes, in
one transaction) and whatever is left when the run ends: a storage commit per message would cap a
run at a few hundred messages a second. A full batch is stored in a thread while the run sends the
next messages (one batch at a time, in order). A worker killed mid-run loses the batch in hand; those
messages stay unsent and are sent again (delivery is at least once, and receivers drop what they
have seen). Nothing is ever stored as sent without the receiver's acknowledgement.

A run stops early, leaving the rest for the next run, when
- every messenger failed to reach its server for the message last answered (ERROR or TIMEOUT):
  trying the other messages now would only spend a timeout on each, and the schedule is the
  backoff;
- its time is nearly up (``deadline``), so a send is never cut off by the task's time limit.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from acoustack import convert, prometheus, schema
from acoustack.clients import StoreClient
from acoustack.errors import AlreadyExistsError
from acoustack.v1 import store_pb2 as spb
from acoustack_messenger.delivery import Backoff, judge

log = logging.getLogger(__name__)

UNREACHED = frozenset({schema.ResponseStatus.ERROR, schema.ResponseStatus.TIMEOUT})
RESPONSE_BATCH = 1000  # acoustack_storage.servicer.MAX_RESPONSES_PER_CALL
# A run reads its messages a page at a time: a first one of a first MQTT window, then larger.
FIRST_PAGE, PAGE = 100, 1000


class Outbox:
    def __init__(
        self,
        store: StoreClient,
        *,
        limit: int = 100,
        newest_first: bool = False,
        messengers: int = 1,
        deadline: float | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.store = store
        self.limit = limit
        self.newest_first = newest_first
        self.messengers = messengers
        self.deadline = deadline  # time.monotonic() after which no new message is started
        self.backoff = backoff or Backoff()
        self.statuses: Counter[str] = Counter()  # responses of this run by status
        self.stopped_early = ""
        self.stored: list[str] = []  # ids of the messages this run put in the outbox
        self.dead_letters: list[str] = []  # ids of the messages this run gave up on
        # The messages handed out and not yet answered by every messenger, with their responses.
        self._pending: dict[uuid.UUID, tuple[schema.Message, list[schema.Response]]] = {}
        self._last: list[schema.Response] = []  # the responses of the message last answered
        self._unstored: list[tuple[schema.Response, spb.TryOutcome | None]] = []
        self._storer: ThreadPoolExecutor | None = None  # stores a batch while the run sends on
        self._storing: Future[None] | None = None
        self._exhausted = False  # every message of the run was handed out

    def get_unsent_messages(self) -> Iterator[schema.Message]:
        """A generator rather than a list, so the run can stop between two messages. The run's
        messages are read a page at a time (a small first one, so sending starts at once), the
        next page while this one is sent."""
        reader = ThreadPoolExecutor(1, thread_name_prefix="outbox-read")
        first = True
        try:
            for page, more in self._pages(reader):
                for index, message in enumerate(page):
                    if not first and self._should_stop(len(page) - index, more):
                        return
                    first = False
                    self._pending[message.id] = (message, [])
                    yield message
        finally:  # no more messages, however the run ended
            reader.shutdown(wait=True, cancel_futures=True)
            self._exhausted = True
            self._close()

    def _pages(
        self, reader: ThreadPoolExecutor
    ) -> Iterator[tuple[list[schema.Message], Future | None]]:
        """(page, the next page's read or None when this is the last), up to ``limit``."""

        def read(size: int, after: str) -> list[schema.Message]:
            # Converted in the reading thread too: it runs while the sender waits for PUBACKs.
            page = self.store.get_unsent_messages(
                size, newest_first=self.newest_first, after_id=after
            )
            return [convert.message_from_proto(proto) for proto in page]

        left = self.limit
        size = min(FIRST_PAGE, left)
        reading: Future | None = reader.submit(read, size, "")
        while reading is not None:
            page = reading.result()
            left -= len(page)
            reading = None
            if len(page) == size and left > 0:  # a full page: there may be more
                size = min(PAGE, left)
                reading = reader.submit(read, size, str(page[-1].id))
            yield page, reading

    def flush(self, *, background: bool = False) -> None:
        """Store the responses kept so far, in one call. In the ``background`` the call runs
        while the run sends on (one at a time, in order: a failure is raised by the next flush)."""
        self._wait_stored()
        if not self._unstored:
            return
        batch, self._unstored = self._unstored, []
        if not background:
            self.store.store_responses(batch)
            return
        if self._storer is None:
            self._storer = ThreadPoolExecutor(1, thread_name_prefix="outbox-store")
        self._storing = self._storer.submit(self.store.store_responses, batch)

    def _wait_stored(self) -> None:
        storing, self._storing = self._storing, None
        if storing is not None:
            storing.result()

    def _close(self) -> None:
        try:
            self.flush()
        finally:
            if self._storer is not None:
                self._storer.shutdown(wait=True)
                self._storer = None

    def _should_stop(self, left: int, more: Future | None) -> bool:
        last = [r.status for r in self._last]
        if len(last) >= self.messengers and all(s in UNREACHED for s in last):
            why = "no messenger reached its server"
        elif self.deadline is not None and time.monotonic() >= self.deadline:
            why = "out of time for this run"
        else:
            return False
        if more is not None:  # the next page, being read: counted as waiting too
            try:
                left += len(more.result())
            except Exception:  # storage gone: the count is what is known
                log.warning("outbox: the next page could not be read", exc_info=True)
        self.stopped_early = f"{why}; {left} message(s) wait"
        log.warning("outbox: stopping this run early: %s", self.stopped_early)
        return True

    def store_response(self, response: schema.Response) -> None:
        outcome = None
        key = response.message_id
        message, responses = self._pending.get(key, (None, []))
        responses.append(response)
        if message is not None and len(responses) >= self.messengers:
            del self._pending[key]
            self._last = responses
            verdict = judge(message, responses, self.backoff)
            if verdict is not None:
                outcome = spb.TryOutcome(
                    refused=verdict.refused,
                    retry_in_s=verdict.retry_in_s,
                    dead_after_refusals=self.backoff.dead_after_refusals,
                )
                if verdict.dead:
                    self.dead_letters.append(str(message.id))
                    log.warning(
                        "outbox: message %s is a dead letter after %d refusal(s), the last: %s "
                        "(acoustack messages retry %s sends it again)",
                        message.id,
                        message.refusals + 1,
                        response.content,
                        message.id,
                    )
        self._unstored.append((response, outcome))
        if self._exhausted and not self._pending:
            # The last window's responses: the template took the messages to the end before
            # they came, so the generator's own last flush had none of them.
            self.flush()
        elif len(self._unstored) >= RESPONSE_BATCH:
            self.flush(background=not self._exhausted)
        self.statuses[response.status.value] += 1
        prometheus.MESSAGE_RESPONSES.labels(response.status.value).inc()

    def store_message(self, message: schema.Message) -> None:
        try:
            if not self.store.store_message(message).created:
                log.info("outbox: message %s is already there", message.id)
        except AlreadyExistsError:
            # A summary made again for a window already summarised, changed by a late detection:
            # the first one stands, as it may have been sent already.
            log.info("outbox: message %s is already there with other content; kept", message.id)
        self.stored.append(str(message.id))
