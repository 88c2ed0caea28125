"""The Celery task `record` on queue `recording` (one worker, concurrency 1: one microphone).

Each run is one slot of ``Recorder.record_slot``; a recording that made it into the store is handed
to detection as a `detect` task on queue `detection`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from celery import Celery

from acoustack.names import Task
from acoustack_recorder.recorder import Recorder

log = logging.getLogger(__name__)


def detection_handoff(app: Celery) -> Callable[[uuid.UUID], None]:
    def hand_over(recording_id: uuid.UUID) -> None:
        app.send_task(Task.DETECT.value, args=[str(recording_id)])

    return hand_over


def register_record_task(app: Celery, make_recorder: Callable[[], Recorder]):
    built: list[Recorder] = []

    def recorder() -> Recorder:
        if not built:
            built.append(make_recorder())
            built[0].reconcile()  # first: whatever an earlier run left behind
        return built[0]

    @app.task(name=Task.RECORD.value, shared=False)
    def record() -> dict:
        result = recorder().record_slot()
        level = logging.WARNING if result.outcome.value == "failed" else logging.INFO
        log.log(level, "record: %s %s", result.outcome.value, result.reason)
        return {
            "outcome": result.outcome.value,
            "reason": result.reason,
            "recording_id": str(result.recording_id) if result.recording_id else None,
        }

    return record
