"""The Celery task `record` on queue `recording` (``RecordArguments``; one worker, concurrency 1:
one microphone).

Each run is one slot of ``Recorder.record_slot``, through the recording template; a recording that
made it into the store is handed to detection as a `detect` task on queue `detection`, with the
program's configuration of its slot. The scheduler sends each `record` with the program's
configuration: its `recording` section (duration, rate, windows…) is applied before the slot, so
`acoustack config set --field recording.duration_s 5` takes effect at the next slot.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_shutdown

from acoustack import prometheus, schema
from acoustack.celery_app import register_task, send
from acoustack.names import DetectArguments, RecordArguments, Task
from acoustack.program_config import RecordingConfig
from acoustack_recorder.recorder import ASK, Recorder

log = logging.getLogger(__name__)

MakeRecorder = Callable[[RecordingConfig], Recorder]
Reconfigure = Callable[[Recorder, RecordingConfig], None]
# At shutdown, what is pending gets this long; the rest is registered by reconcile at next start.
REGISTRATION_GRACE_S = 10.0


def detection_handoff(app: Celery) -> Callable[[schema.Recording, dict[str, Any]], None]:
    """Send `detect` for a stored recording, with the recording itself (the detector need not
    fetch it) and the program's configuration of its slot. One producer is kept for the
    process's life (taking one from the pool for every slot cost more than the publish itself);
    kombu reconnects it."""
    kept = []
    lock = threading.Lock()  # a producer is not thread-safe: the registrar and reconcile share it

    def hand_over(recording: schema.Recording, program_config: dict[str, Any]) -> None:
        arguments = DetectArguments(
            recording_id=recording.id, recording=recording, program_config=program_config
        )
        with lock:
            if not kept:
                kept.append(app.producer_pool.acquire(block=True))
            send(app, arguments, producer=kept[0])

    return hand_over


def register_record_task(
    app: Celery, make_recorder: MakeRecorder, reconfigure: Reconfigure | None = None
):
    """Add `record` to ``app``. The recorder is built in the process that runs the task (a pool
    child, after the fork), on its first task, with that task's recording section, and
    reconciles the temporary area first. When the pool process shuts down, its registrar gets a
    few seconds to register what is pending."""
    built: list[Recorder] = []

    @worker_process_shutdown.connect(weak=False)
    def finish_registrations(**_: Any) -> None:
        for made in built:
            if made.registrar is not None:
                made.registrar.close(REGISTRATION_GRACE_S)

    def record(task: Any, arguments: RecordArguments) -> dict:
        section = arguments.recording or RecordingConfig()
        if not built:
            built.append(make_recorder(section))
            built[0].program_config = arguments.program_config
            built[0].start()  # first: whatever an earlier run left behind
        active = built[0]
        active.program_config = arguments.program_config
        if reconfigure is not None:
            reconfigure(active, section)
        deployment = ASK if arguments.deployment == "ask" else arguments.deployment
        try:
            result = active.record_slot(deployment)
        except SoftTimeLimitExceeded:
            # The device hung past the slot's limit: say so; the pool's hard limit ends the rest.
            log.error("record: the recording took longer than its time limit; abandoned")
            raise
        prometheus.RECORDINGS.labels(result.outcome.name.lower()).inc()
        level = logging.WARNING if result.outcome.value == "failed" else logging.INFO
        log.log(level, "record: %s %s", result.outcome.value, result.reason)
        return {
            "outcome": result.outcome.value,
            "reason": result.reason,
            "recording_id": str(result.recording_id) if result.recording_id else None,
        }

    return register_task(app, Task.RECORD, record)
