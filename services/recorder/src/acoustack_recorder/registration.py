"""Registering written recordings with storage, and handing them to detection, off the recording
path.

A slot ends when its file is safely on disk (written, fsynced, renamed; its GUANO block is the
journal). Telling storage about it and handing it to detection happen here, each in a thread of
its own (a stage), in the order the slots were recorded; the two stages overlap, so one recording
is handed over while the next is registered. A storage or broker outage never delays a slot: the
device records on schedule while the registrations wait, retried with backoff, and they go through
in order once the service is back. When everything answers but more than ``high_water``
registrations are pending (the device records faster than storage takes recordings, i.e. it is
overloaded), a slot waits for the backlog to shrink rather than let it grow without bound.

Nothing depends on this queue surviving: a crash loses only what is in memory, and the files are
registered from their GUANO block by the recorder's reconcile at the next start. If the queue ever
fills (a very long outage), later files are left to that same reconcile, run as soon as the queue
has drained.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from acoustack.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)

log = logging.getLogger(__name__)

# Storage said no for good: retrying would not change its answer.
REFUSALS = (NotFoundError, AlreadyExistsError, InvalidArgumentError)
# Tries of an error that is neither an outage nor a refusal (a bug) before leaving the file.
MAX_UNEXPECTED = 5


@dataclass(frozen=True)
class Registration:
    description: str  # for the log: which recording
    run: Callable[[], None]  # raises UnavailableError while storage cannot take it
    # Called when storage refuses it for good (not an outage): the file is set aside, with why.
    refused: Callable[[Exception], None] = lambda exc: None
    # Second stage, after ``run`` went through (the hand-over to detection); retried until it does.
    then: Callable[[], None] | None = None


class _Stage:
    """One thread working through its queue in order."""

    def __init__(self, name: str, work: Callable[[object], None], maxsize: int = 0) -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.busy = False
        self.waiting_since: float | None = None  # monotonic time of the first failed attempt
        self._work = work
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def _loop(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:  # asked to stop
                return
            self.busy = True
            try:
                self._work(item)
            except Exception:  # never let one recording stop the stage
                log.exception("%s: unexpected error", self.thread.name)
            finally:
                self.busy = False
                self.queue.task_done()

    @property
    def pending(self) -> int:
        return self.queue.qsize() + (1 if self.busy else 0)


class Registrar:
    def __init__(
        self,
        *,
        catch_up: Callable[[], object] = lambda: None,
        max_pending: int = 10_000,
        high_water: int = 4,
        max_wait_s: float = 60.0,
        initial_backoff_s: float = 0.5,
        max_backoff_s: float = 60.0,
    ) -> None:
        self._catch_up = catch_up  # the recorder's reconcile: registers what the queue dropped
        self.high_water = high_water
        self.max_wait_s = max_wait_s
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self._overflowed = threading.Event()
        self._stop = threading.Event()
        self._changed = threading.Condition()  # notified whenever something finishes
        self._register = _Stage("registrar", self._registration_stage, maxsize=max_pending)
        self._hand_over = _Stage("hand-over", self._hand_over_stage)
        self._register.thread.start()
        self._hand_over.thread.start()

    @property
    def pending(self) -> int:
        return self._register.pending + self._hand_over.pending

    @property
    def in_outage(self) -> bool:
        return self._register.waiting_since is not None or self._hand_over.waiting_since is not None

    def submit(self, registration: Registration) -> bool:
        """Queue a registration; False when the queue is full (the file waits for reconcile).
        Waits (at most ``max_wait_s``) while the backlog is above ``high_water`` and nothing is
        down: the device is recording faster than the pipeline takes recordings."""
        deadline = time.monotonic() + self.max_wait_s
        with self._changed:
            while (
                self.pending >= self.high_water
                and not self.in_outage
                and (left := deadline - time.monotonic()) > 0
            ):
                self._changed.wait(min(left, 0.5))
        try:
            self._register.queue.put_nowait(registration)
            return True
        except queue.Full:
            if not self._overflowed.is_set():
                log.error(
                    "%d registrations waiting: %s and later recordings are left on disk for "
                    "reconcile once storage is back",
                    self._register.queue.maxsize,
                    registration.description,
                )
            self._overflowed.set()
            return False

    def drain(self, timeout_s: float) -> int:
        """Wait until nothing is pending (or the time is up); what is still pending."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while (self.pending or self._overflowed.is_set()) and (
                left := deadline - time.monotonic()
            ) > 0:
                self._changed.wait(min(left, 0.1))
        return self.pending

    def close(self, timeout_s: float = 10.0) -> int:
        """Finish what goes through within ``timeout_s``, then stop. Whatever is left stays on
        disk for reconcile at the next start."""
        left = self.drain(timeout_s)
        self._stop.set()
        for stage in (self._register, self._hand_over):
            stage.queue.put(None)
            stage.thread.join(5.0)
        if left:
            log.warning(
                "%d recording(s) not registered yet: reconcile registers them at start", left
            )
        return left

    # --- the two stages ---------------------------------------------------------------------

    def _registration_stage(self, registration: Registration) -> None:
        stored = self._attempt(
            self._register, registration.description, registration.run, registration.refused
        )
        if stored and registration.then is not None:
            self._hand_over.queue.put(registration)
        if self._register.queue.qsize() == 0 and self._overflowed.is_set():
            self._overflowed.clear()
            self._attempt(
                self._register, "the recordings the full queue left on disk", self._catch_up, None
            )
        self._notify()

    def _hand_over_stage(self, registration: Registration) -> None:
        assert registration.then is not None
        self._attempt(
            self._hand_over,
            f"the hand-over of {registration.description}",
            registration.then,
            refused=None,
            give_up_after=None,
        )
        self._notify()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _attempt(
        self,
        stage: _Stage,
        description: str,
        run: Callable[[], object],
        refused: Callable[[Exception], None] | None,
        give_up_after: int | None = MAX_UNEXPECTED,
    ) -> bool:
        """True once ``run`` went through. Outages (storage or the broker unreachable) are waited
        out with jittered exponential backoff, however long; a refusal (when the stage can be
        refused) sets the recording aside; another error is tried ``give_up_after`` times (None:
        for ever, as for the hand-over: nothing else would hand a stored recording over)."""
        pause, unexpected = self.initial_backoff_s, 0
        while True:
            try:
                run()
            except Exception as exc:
                if isinstance(exc, REFUSALS) and refused is not None:
                    log.error("storage refused %s: %s", description, exc)
                    try:
                        refused(exc)
                    except Exception:
                        log.exception("setting %s aside failed", description)
                    return False
                if not isinstance(exc, UnavailableError) and give_up_after is not None:
                    unexpected += 1
                    if unexpected >= give_up_after:
                        log.exception(
                            "%s failed %d times; left for reconcile at the next start",
                            description,
                            unexpected,
                        )
                        return False
                if stage.waiting_since is None:
                    stage.waiting_since = time.monotonic()
                    self._notify()  # a slot waiting on the backlog need not wait any more
                    log.warning("%s has to wait (%s); later recordings wait on disk",
                                description, exc)  # fmt: skip
                if self._stop.wait(random.uniform(0, pause)):
                    return False
                pause = min(self.max_backoff_s, pause * 2)
                continue
            if stage.waiting_since is not None:
                log.info("%s went through after %.0f s; catching up", description,
                         time.monotonic() - stage.waiting_since)  # fmt: skip
                stage.waiting_since = None
            return True
