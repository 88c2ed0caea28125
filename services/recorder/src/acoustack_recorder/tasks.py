"""The Celery task `record` on queue `recording` (one worker, concurrency 1: one microphone).

Each run is one slot of ``Recorder.record_slot``; a recording that made it into the store is handed
to detection as a `detect` task on queue `detection`. The scheduler sends each `record` with the
program's configuration: its `recording` section (duration, rate, windows…) is applied before the
slot, so `acoustack config set recording.duration_s 5` takes effect at the next slot.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_shutdown
from pydantic import ValidationError

from acoustack import schema
from acoustack.errors import InvalidArgumentError
from acoustack.names import Task
from acoustack.program_config import RecordingConfig, read_section
from acoustack_recorder.recorder import ASK, Recorder

log = logging.getLogger(__name__)

Reconfigure = Callable[[Recorder, RecordingConfig], None]
# At shutdown, what is pending gets this long; the rest is registered by reconcile at next start.
REGISTRATION_GRACE_S = 10.0


def detection_handoff(app: Celery) -> Callable[[schema.Recording], None]:
    """Send `detect` for a stored recording, with the recording itself so that the detector need
    not fetch it. One producer is kept for the process's life (taking one from the pool for every
    slot cost more than the publish itself); kombu reconnects it."""
    kept = []
    lock = threading.Lock()  # a producer is not thread-safe: the registrar and reconcile share it

    def hand_over(recording: schema.Recording) -> None:
        with lock:
            if not kept:
                kept.append(app.producer_pool.acquire(block=True))
            app.send_task(
                Task.DETECT.value,
                args=[str(recording.id)],
                kwargs={"recording": recording.model_dump(mode="json")},
                producer=kept[0],
            )

    return hand_over


def register_record_task(
    app: Celery, make_recorder: Callable[[], Recorder], reconfigure: Reconfigure | None = None
):
    """Add `record` to ``app``. The recorder is built in the process that runs the task (a pool
    child, after the fork), on its first task, and reconciles the temporary area first. When the
    pool process shuts down, its registrar gets a few seconds to register what is pending."""
    built: list[Recorder] = []

    def recorder() -> Recorder:
        if not built:
            built.append(make_recorder())
            built[0].start()  # first: whatever an earlier run left behind
        return built[0]

    @worker_process_shutdown.connect(weak=False)
    def finish_registrations(**_: Any) -> None:
        for made in built:
            if made.registrar is not None:
                made.registrar.close(REGISTRATION_GRACE_S)

    @app.task(name=Task.RECORD.value, shared=False)
    def record(program_config: dict[str, Any] | None = None, deployment: Any = ASK) -> dict:
        """``deployment``: the active deployment as the scheduler sends it (None: there is none);
        a task sent without it (by hand, by an older scheduler) makes the recorder ask storage."""
        try:
            section = read_section(program_config, "recording", RecordingConfig)
            if isinstance(deployment, dict):
                deployment = schema.Deployment.model_validate(deployment)
            elif not (deployment is None or deployment is ASK):
                raise InvalidArgumentError(
                    f"deployment: expected a deployment or null, got {type(deployment).__name__}"
                )
        except (InvalidArgumentError, ValidationError) as exc:
            log.error("record: the task's arguments are not usable: %s", exc)
            return {"outcome": "failed", "reason": f"arguments: {exc}", "recording_id": None}
        active = recorder()
        if section is not None and reconfigure is not None:
            reconfigure(active, section)
        try:
            result = active.record_slot(deployment)
        except SoftTimeLimitExceeded:
            # The device hung past the slot's limit: say so; the pool's hard limit ends the rest.
            log.error("record: the recording took longer than its time limit; abandoned")
            raise
        level = logging.WARNING if result.outcome.value == "failed" else logging.INFO
        log.log(level, "record: %s %s", result.outcome.value, result.reason)
        return {
            "outcome": result.outcome.value,
            "reason": result.reason,
            "recording_id": str(result.recording_id) if result.recording_id else None,
        }

    return record
