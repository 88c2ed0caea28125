"""Recordings that never got a model output get their `detect` sent again.

How one is left behind: the recorder lost power between storing a recording and sending its
`detect` (at restart the file is known to storage, so reconcile does not send it again); a detect
task hit its hard time limit, or failed on an error nobody foresaw, and was acknowledged. Such a
recording stays temporary forever: file management waits for its output, the RAM-backed
temporary area fills, and a deployment stop waits for it until its time runs out.

The sweep looks at temporary recordings without a model output (without the output of every
required model, when the program runs `detection.extra_models`). The clock for a recording runs
only while the detection queue is empty: while tasks wait there, one of them may be its own.
After ``after_s`` of that, `detect` is sent again. After ``max_attempts`` sends with still no
output, the recording is marked failed with the reason, so it is visible in status and stops
holding anything up.

Domain logic: the queue, the store and the send come in as callables and a client.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from acoustack import schema
from acoustack.clients import StoreClient
from acoustack.errors import FailedPreconditionError
from acoustack.v1 import types_pb2 as pb

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    waiting: int = 0  # temporary recordings without a model output
    resent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: str = ""  # why nothing was looked at


class DetectionSweep:
    def __init__(
        self,
        store: StoreClient,
        send_detect: Callable[[str], None],
        detection_queued: Callable[[], int],
        *,
        after_s: float = 600.0,
        max_attempts: int = 3,
        clock: Callable[[], float] = time.monotonic,
        processed: Callable[[set[str]], bool] = bool,
    ) -> None:
        self.store = store
        # Whether a recording with outputs of these models is processed (the program's
        # DetectionConfig.is_processed: its required models); by default, any output.
        self.processed = processed
        self.send_detect = send_detect
        self.detection_queued = detection_queued
        self.after_s = after_s
        self.max_attempts = max_attempts
        self.clock = clock
        self._missing_since: dict[str, float] = {}
        self._sent: dict[str, int] = {}

    def run(self) -> SweepReport:
        queued = self.detection_queued()
        if queued:
            # Any of the recordings may have its task among these: start their clocks afresh.
            self._missing_since.clear()
            return SweepReport(skipped=f"{queued} detection task(s) queued")
        entries = self.store.list_recordings(
            statuses=[pb.RECORDING_STATUS_TEMPORARY], include_model_outputs=True, limit=10_000
        )
        missing = {
            e.recording.id
            for e in entries
            if not self.processed({o.model_name for o in e.model_outputs})
        }
        for gone in set(self._missing_since) - missing:  # detected, failed or managed since
            self._missing_since.pop(gone, None)
            self._sent.pop(gone, None)
        report = SweepReport(waiting=len(missing))
        now = self.clock()
        for recording_id in sorted(missing):
            since = self._missing_since.setdefault(recording_id, now)
            if now - since < self.after_s:
                continue
            sent = self._sent.get(recording_id, 0)
            if sent >= self.max_attempts:
                try:
                    self.store.mark_recording_failed(
                        recording_id,
                        f"detection: no model output after {sent} more detect task(s), each "
                        f"given {self.after_s:.0f} s with the detection queue empty",
                        only_if=schema.RecordingStatus.TEMPORARY,
                    )
                except FailedPreconditionError:  # detected and filed meanwhile, at last
                    self._missing_since.pop(recording_id)
                    self._sent.pop(recording_id, None)
                    continue
                self._missing_since.pop(recording_id)
                self._sent.pop(recording_id, None)
                report.failed.append(recording_id)
                continue
            self.send_detect(recording_id)
            self._sent[recording_id] = sent + 1
            self._missing_since[recording_id] = now
            report.resent.append(recording_id)
        if report.resent:
            log.warning(
                "detect sent again for %d recording(s) left without a model output: %s",
                len(report.resent),
                ", ".join(report.resent[:5]) + (" …" if len(report.resent) > 5 else ""),
            )
        if report.failed:
            log.error(
                "%d recording(s) marked failed: still no model output after %d detect task(s): %s",
                len(report.failed),
                self.max_attempts,
                ", ".join(report.failed[:5]) + (" …" if len(report.failed) > 5 else ""),
            )
        return report
