"""The Celery task `detect` on queue `detection` (``DetectArguments``): a thin adapter over the
detection pipeline, with the program's `detection` section the task came with.

Storage unreachable: retried with backoff, for as long as it takes (the recording waits, nothing is
lost). A recording storage does not know: logged and dropped. A file the model cannot read: the
recording is marked failed with the reason, and the task ends; the worker goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Celery

from acoustack import schema
from acoustack.celery_app import register_task
from acoustack.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from acoustack.names import DetectArguments, Task
from acoustack_detector.pipeline import Detector

log = logging.getLogger(__name__)


def register_detect_task(app: Celery, make_detector: Callable[[], Detector]):
    """Add the detect task to ``app``. The detector (and its model) is made once per process, on
    the first task, so a worker that never gets one loads nothing."""
    built: list[Detector] = []

    def detector() -> Detector:
        if not built:
            built.append(make_detector())
        return built[0]

    def detect(task: Any, arguments: DetectArguments) -> dict:
        recording_id = str(arguments.recording_id)
        # The recording handed over is trusted on a first delivery only; a redelivered task (the
        # worker died mid-task) or a retry asks storage, which knows what has run since.
        first_delivery = not (task.request.delivery_info or {}).get("redelivered") and (
            not task.request.retries
        )
        given = arguments.recording if first_delivery else None
        if given is not None and given.id != arguments.recording_id:
            log.warning(
                "detect %s: the recording sent is %s, not the task's; asking storage",
                recording_id, given.id,
            )  # fmt: skip
            given = None
        try:
            pipeline = detector().pipeline(arguments.detection)
            result = pipeline.process(recording_id, given)
        except NotFoundError as exc:
            log.error("detect %s: %s; dropping the task", recording_id, exc)
            return {"recording_id": recording_id, "outcome": "unknown recording"}
        except InvalidArgumentError as exc:
            log.error("detect %s: %s; marking the recording failed", recording_id, exc)
            try:
                detector().store.mark_recording_failed(
                    recording_id, f"detection: {exc}", only_if=schema.RecordingStatus.TEMPORARY
                )
            except FailedPreconditionError as moved_on:  # filed or deleted meanwhile: keep it so
                log.info("detect %s: %s", recording_id, moved_on)
                return {"recording_id": recording_id, "outcome": "moved on"}
            return {"recording_id": recording_id, "outcome": "failed"}
        log.info(
            "detect %s: %s (%d detections, %d messages)",
            recording_id, result.outcome.value, result.detections, result.messages,
        )  # fmt: skip
        return {
            "recording_id": recording_id,
            "outcome": result.outcome.value,
            "detections": result.detections,
        }

    return register_task(
        app,
        Task.DETECT,
        detect,
        autoretry_for=(UnavailableError,),
        retry_backoff=2,
        retry_backoff_max=300,
        retry_jitter=True,
        max_retries=None,
    )
