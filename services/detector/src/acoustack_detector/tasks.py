"""The Celery task `detect` on queue `detection` (``DetectArguments``): a thin adapter over the
detection pipeline, with the program's `detection` section the task came with.

Storage unreachable: retried with backoff, for as long as it takes (the recording waits, nothing is
lost). A recording storage does not know: logged and dropped. A file the model cannot read: the
recording is marked failed with the reason, and the task ends; the worker goes on. The bundled
model that cannot load (not built): the task ends and the recording stays temporary, for the
scheduler's sweep to send again.

Several models (the section's `model` and its `extra_models`) run in parallel threads, each with
its own pipeline (threshold, messages) and stored output. A required model's failure decides the
recording's fate as below; an optional model's is logged and costs the recording nothing.

A model server's failure (``ModelServerError``, model.proto's STATUS CODES): one that may pass (down,
slow, not ready) is tried again later, ``Detector.model_retry.attempts`` times in all with backoff,
counted in a header of the task's own (storage's retries do not count); then, or at once for a
failure that cannot pass (the server refuses the recording, a malformed output), the recording is
marked failed with the reason.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from celery import Celery

from acoustack import schema
from acoustack.celery_app import register_task
from acoustack.errors import (
    AcoustackError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
    bounded,
)
from acoustack.names import DetectArguments, Task

if TYPE_CHECKING:  # imported by the task itself: only in a pool child (wiring.run_worker)
    from acoustack_detector.pipeline import Detector, ModelRun, Result

log = logging.getLogger(__name__)

# How many times a model server has been tried for this recording (a header of the task).
MODEL_ATTEMPTS_HEADER = "acoustack_model_attempts"


def register_detect_task(app: Celery, make_detector: Callable[[], Detector]):
    """Add the detect task to ``app``. The detector (and its model) is made once per process, on
    the first task, so a worker that never gets one loads nothing."""
    built: list[Detector] = []

    def detector() -> Detector:
        if not built:
            built.append(make_detector())
        return built[0]

    def detect(task: Any, arguments: DetectArguments) -> dict:
        from acoustack_detector.pipeline import Result
        from acoustack_detector.remote_model import ModelServerError

        recording_id = str(arguments.recording_id)

        def mark_failed(reason: str) -> dict:
            log.error("detect %s: %s; marking the recording failed", recording_id, reason)
            try:
                detector().store.mark_recording_failed(
                    recording_id, failure_reason(reason), only_if=schema.RecordingStatus.TEMPORARY
                )
            except FailedPreconditionError as moved_on:  # filed or deleted meanwhile: keep it so
                log.info("detect %s: %s", recording_id, moved_on)
                return {"recording_id": recording_id, "outcome": "moved on"}
            return {"recording_id": recording_id, "outcome": "failed", "reason": reason}

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
            runs = detector().runs(arguments.detection)
        except AcoustackError as exc:  # the bundled model cannot load (not built, damaged)
            # Every recording would fail alike: it stays temporary for the sweep to send again
            # once the model is there (or to fail after detection.resend_attempts).
            log.error("detect %s: %s; the recording stays temporary", recording_id, exc)
            return {"recording_id": recording_id, "outcome": "error", "reason": str(exc)}
        outcomes = run_all(runs, recording_id, given)
        # Storage away or the recording unknown: the whole task, whichever model met it.
        for outcome in outcomes:
            if isinstance(outcome, UnavailableError):
                raise outcome  # storage: retried for as long as it takes (autoretry_for)
            if isinstance(outcome, NotFoundError):
                log.error("detect %s: %s; dropping the task", recording_id, outcome)
                return {"recording_id": recording_id, "outcome": "unknown recording"}
        attempts = model_attempts(task) + 1
        policy = detector().model_retry
        passing = [
            (run, o) for run, o in zip(runs, outcomes, strict=True)
            if isinstance(o, ModelServerError) and o.retry
        ]  # fmt: skip
        if passing and attempts < policy.attempts:
            # Every model again: those that stored their output find it stored and skip.
            delay = policy.delay_s(attempts - 1)
            log.warning(
                "detect %s: %s; trying again in %.0f s (attempt %d of %d)",
                recording_id, passing[0][1], delay, attempts, policy.attempts,
            )  # fmt: skip
            raise task.retry(
                countdown=delay, max_retries=None, headers={MODEL_ATTEMPTS_HEADER: attempts}
            )
        models: dict[str, str] = {}
        failure = None
        error = None
        for run, outcome in zip(runs, outcomes, strict=True):
            if isinstance(outcome, Result):
                models[run.model] = outcome.outcome.value
                log.info(
                    "detect %s: %s: %s (%d detections, %d messages)",
                    recording_id, run.model, outcome.outcome.value, outcome.detections,
                    outcome.messages,
                )  # fmt: skip
                continue
            if isinstance(outcome, ModelServerError | InvalidArgumentError):
                tried = f" (after {attempts} attempts)" if getattr(outcome, "retry", False) else ""
                reason = f"{outcome}{tried}"
                models[run.model] = "failed"
                if run.required:
                    failure = failure or reason
                else:  # an optional model's failure costs the recording nothing
                    log.warning("detect %s: %s (not required): %s", recording_id, run.model, reason)
                continue
            models[run.model] = "error"  # a bug of ours: the scheduler's resend tries it later
            log.error(
                "detect %s: %s: unexpected error; the recording stays temporary",
                recording_id, run.model, exc_info=outcome,
            )  # fmt: skip
            if run.required:
                error = error or repr(outcome)
        if failure is not None:
            return {**mark_failed(failure), "models": models}
        if error is not None:
            return {"recording_id": recording_id, "outcome": "error", "reason": error,
                    "models": models}  # fmt: skip
        main = outcomes[0]
        return {
            "recording_id": recording_id,
            "outcome": main.outcome.value,
            "detections": main.detections,
            "models": models,
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


def failure_reason(reason: str) -> str:
    """A recording's failure reason: one line of printable text, short enough to store (a model
    server's words can be anything)."""
    printable = "".join(c if c.isprintable() else " " for c in reason)
    return bounded(f"detection: {printable}")


def model_attempts(task: Any) -> int:
    """The model attempts made before this run (the header ``retry`` set; 0 at first)."""
    request = task.request
    value = getattr(request, MODEL_ATTEMPTS_HEADER, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(MODEL_ATTEMPTS_HEADER, 0)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def run_all(
    runs: list[ModelRun], recording_id: str, given: schema.Recording | None
) -> list[Result | Exception]:
    """Each model's pipeline on the recording, in parallel where the device has the cores (the
    bundled model computes, a model server waits on the network); what each returned or raised."""

    def one(run: ModelRun) -> Result | Exception:
        try:
            return run.pipeline.process(recording_id, given)
        except Exception as exc:  # sorted out by the caller, model by model
            return exc

    if len(runs) == 1:
        return [one(runs[0])]
    workers = min(len(runs), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="model") as pool:
        return list(pool.map(one, runs))
