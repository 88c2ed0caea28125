"""The Celery task `detect(recording_id)` on queue `detection`: a thin wrapper over the pipeline.

Storage unreachable: retried with backoff, for as long as it takes (the recording waits, nothing is
lost). A recording storage does not know: logged and dropped. A file the model cannot read: the
recording is marked failed with the reason, and the task ends; the worker goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Celery
from pydantic import ValidationError

from acoustack import schema
from acoustack.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from acoustack.names import Task
from acoustack_detector.pipeline import DetectionPipeline

log = logging.getLogger(__name__)


def register_detect_task(app: Celery, make_pipeline: Callable[[], DetectionPipeline]):
    """Add the detect task to ``app``. The pipeline (and its model) is built once per process,
    on the first task, so a worker that never gets one loads nothing."""
    built: list[DetectionPipeline] = []

    def pipeline() -> DetectionPipeline:
        if not built:
            built.append(make_pipeline())
        return built[0]

    @app.task(
        name=Task.DETECT.value,
        bind=True,
        shared=False,  # bound to this app only, not every app made in the process
        autoretry_for=(UnavailableError,),
        retry_backoff=2,
        retry_backoff_max=300,
        retry_jitter=True,
        max_retries=None,
    )
    def detect(self, recording_id: str, recording: dict[str, Any] | None = None) -> dict:
        """``recording``: the recording as the recorder handed it over, used on a first delivery
        only; a redelivered task (the worker died mid-task) or a retry asks storage."""
        first_delivery = not (self.request.delivery_info or {}).get("redelivered") and (
            not self.request.retries
        )
        try:
            given = (
                schema.Recording.model_validate(recording)
                if recording is not None and first_delivery
                else None
            )
            if given is not None and str(given.id) != str(recording_id):
                raise InvalidArgumentError(
                    f"recording.id: {given.id} is not the task's recording {recording_id}"
                )
        except (ValidationError, InvalidArgumentError) as exc:
            log.warning("detect %s: the recording sent is not usable (%s); asking storage",
                        recording_id, exc)  # fmt: skip
            given = None
        try:
            result = pipeline().process(recording_id, given)
        except NotFoundError as exc:
            log.error("detect %s: %s; dropping the task", recording_id, exc)
            return {"recording_id": recording_id, "outcome": "unknown recording"}
        except InvalidArgumentError as exc:
            log.error("detect %s: %s; marking the recording failed", recording_id, exc)
            try:
                pipeline().store.mark_recording_failed(
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

    return detect
