"""The six task templates (acoupi's, with its parameters and call sequences).

Each takes components and returns the task: a plain function that a Celery task, a test or a script
calls. Any object with the right methods will do (see ``acoustack.components.types``).

acoustack's services run through these templates, each with its own components: the recorder's
`record`, the detector's `detect`, storage's `manage_files` and the messenger's `send_messages`,
`summarise` and `heartbeat` tasks, so each task has one path.

Failure: a component that raises is logged with what the task was doing and to which record, and
the error goes on to the caller (Celery retries the task, or its schedule runs it again). Each task
is safe to run again after a failure at any step:
- recording: a file whose registration failed stays in the temporary area, where the recorder's
  reconcile registers or quarantines it;
- detection: message ids are derived from (recording, model, builder), so a run that stored the
  output but not all its messages stores the missing ones on the next run, and no duplicates;
- file management: a recording is copied to its new place, the store updated, and only then the
  temporary file removed; if the store update fails, the copy is removed;
- messaging: a send that raises is stored as an ERROR response; the message stays unsent. Messages
  go out in windows: as many at once as the least pipelined messenger takes (``window`` of a
  PipelinedMessenger; 1 for any other, which then sends as acoupi's template does, one at a time).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from acoustack import schema
from acoustack.components.types import (
    AudioRecorder,
    MessageBuilder,
    MessageStore,
    Messenger,
    Model,
    ModelOutputCleaner,
    PipelinedMessenger,
    ProcessingFilter,
    RecordingCondition,
    RecordingSavingFilter,
    RecordingSavingManager,
    Store,
    Summariser,
)
from acoustack.errors import AcoustackError
from acoustack.identity import hardware_id

logger = logging.getLogger(__name__)

# acoupi's default temporary area; the services pass their own (ACOUSTACK_TEMP_DIR).
TEMP_PATH = Path("/dev/shm/acoustack")
MetricFn = Callable[[], schema.Metric]
HeartbeatSerializer = Callable[[schema.Heartbeat], "str | bytes"]
RecordingManagementCondition = Callable[[schema.Recording, Sequence[schema.ModelOutput]], bool]
_MESSAGE_IDS = uuid.UUID("0b6f8f2e-5c1a-4f57-9a53-7d0c1e8b2a44")  # namespace for derived ids


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def generate_recording_task(
    recorder: AudioRecorder,
    store: Store,
    logger: logging.Logger = logger,
    recording_conditions: list[RecordingCondition] | None = None,
    *,
    clock: Callable[[], dt.datetime] = _now,
) -> Callable[[], schema.Recording | None]:
    """``clock``: acoustack's addition, the time the conditions are asked about (UTC)."""
    conditions = list(recording_conditions or [])

    def recording_task() -> schema.Recording | None:
        now = clock()
        for condition in conditions:
            verdict = condition.should_record(now)
            if not verdict:
                # A condition may answer with a falsy verdict that says why (acoustack's do).
                why = getattr(verdict, "reason", "") or f"{type(condition).__name__} says no"
                logger.info("not recording at %s: %s", now.isoformat(), why)
                return None
        deployment = store.get_current_deployment()
        if deployment is None:
            logger.info("not recording: no active deployment")
            return None
        try:
            recording = recorder.record(deployment)
        except Exception:
            logger.exception("recording failed (deployment %s)", deployment.name)
            raise
        try:
            store.store_recording(recording)
        except Exception:
            logger.exception(
                "recording %s at %s was made but not stored; the file stays for reconciliation",
                recording.id, recording.path,
            )  # fmt: skip
            raise
        return recording

    return recording_task


def _message_id(recording_id: uuid.UUID, model_name: str, index: int, builder: object) -> uuid.UUID:
    return uuid.uuid5(
        _MESSAGE_IDS, f"{recording_id}/{model_name}/{index}/{type(builder).__qualname__}"
    )


def generate_detection_task(
    store: Store,
    model: Model,
    message_store: MessageStore,
    logger: logging.Logger = logger,
    output_cleaners: list[ModelOutputCleaner] | None = None,
    processing_filters: list[ProcessingFilter] | None = None,
    message_factories: list[MessageBuilder] | None = None,
) -> Callable[[schema.Recording], schema.ModelOutput | None]:
    cleaners = list(output_cleaners or [])
    filters = list(processing_filters or [])
    factories = list(message_factories or [])

    def detection_task(recording: schema.Recording) -> schema.ModelOutput | None:
        for processing_filter in filters:
            if not processing_filter.should_process_recording(recording):
                logger.info(
                    "recording %s not processed: %s says no",
                    recording.id,
                    type(processing_filter).__name__,
                )
                return None
        try:
            model_output = model.run(recording)
        except AcoustackError as exc:  # foreseen (a server's status, unreadable audio): no trace
            logger.error(
                "model %s failed on recording %s (%s): %s",
                _model_name(model), recording.id, recording.path, exc,
            )  # fmt: skip
            raise
        except Exception:
            logger.exception(
                "model %s failed on recording %s (%s)",
                _model_name(model), recording.id, recording.path,
            )  # fmt: skip
            raise
        for cleaner in cleaners:
            model_output = cleaner.clean(model_output)
        try:
            store.store_model_output(model_output)
            for index, factory in enumerate(factories):
                message = factory.build_message(model_output)
                if message is None:
                    continue
                message = message.model_copy(
                    update={
                        "id": _message_id(recording.id, model_output.model_name, index, factory)
                    }
                )
                message_store.store_message(message)
        except Exception:
            logger.exception(
                "output of %s for recording %s not fully stored; the next run completes it",
                model_output.model_name, recording.id,
            )  # fmt: skip
            raise
        return model_output

    return detection_task


def _place(source: Path, target: Path) -> None:
    """Copy to ``target`` whole (temporary name, fsync, rename) without touching ``source``.

    Once on disk, the copy leaves the page cache: a saved recording is seldom read again soon,
    and its cached pages (2.2 MiB per 3 s at 384 kHz) would be charged to storage's memory and
    push out the services' own code on a small device."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.partial")
    shutil.copyfile(source, temp)
    with open(temp, "rb+") as handle:
        os.fsync(handle.fileno())
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    os.replace(temp, target)


def _model_name(model: Model) -> str:
    """For a log line: a model server that does not answer cannot say its name."""
    try:
        return model.name
    except Exception:
        return type(model).__name__


def generate_file_management_task(
    store: Store,
    file_managers: list[RecordingSavingManager],
    logger: logging.Logger = logger,
    file_filters: list[RecordingSavingFilter] | None = None,
    required_models: list[str] | None = None,
    management_conditions: list[RecordingManagementCondition] | None = None,
    tmp_path: Path | Sequence[Path] = TEMP_PATH,
) -> Callable[[], None]:
    """``tmp_path``: the temporary area, or several (an area and its fallback)."""
    filters = list(file_filters or [])
    folders = [Path(tmp_path)] if isinstance(tmp_path, str | os.PathLike) else list(tmp_path)
    required = set(required_models or [])
    conditions = list(management_conditions or [])

    def manage(recording: schema.Recording, outputs: Sequence[schema.ModelOutput]) -> None:
        source = Path(recording.path)
        if filters and not any(f.should_save_recording(recording, outputs) for f in filters):
            logger.info("recording %s passes no saving filter: deleting it", recording.id)
            store.mark_recording_deleted(recording)
            source.unlink(missing_ok=True)
            return
        for manager in file_managers:
            target = manager.save_recording(recording, outputs)
            if target is None:
                continue
            target = Path(target)
            _place(source, target)
            try:
                store.update_recording_path(recording, target)
            except Exception:
                target.unlink(missing_ok=True)  # the store still points at the temporary file
                raise
            source.unlink(missing_ok=True)
            logger.info("recording %s saved to %s", recording.id, target)
            return
        logger.info("no saving manager took recording %s: deleting it", recording.id)
        store.mark_recording_deleted(recording)
        source.unlink(missing_ok=True)

    def file_management_task() -> None:
        paths = sorted(
            p for folder in folders for p in folder.glob("*.wav") if not p.name.startswith(".")
        )
        if not paths:
            return
        for recording, outputs in store.get_recordings_by_path(paths):
            done = {o.model_name for o in outputs}
            if not required <= done:
                continue  # waiting for the models it still needs
            if not all(condition(recording, outputs) for condition in conditions):
                continue
            try:
                manage(recording, outputs)
            except Exception:
                logger.exception(
                    "managing recording %s (%s) failed; it stays temporary",
                    recording.id,
                    recording.path,
                )
                raise

    return file_management_task


def _raised(message: schema.Message, exc: Exception) -> schema.Response:
    return schema.Response(
        message_id=message.id,
        status=schema.ResponseStatus.ERROR,
        content=f"{type(exc).__name__}: {exc}"[:1000],
    )


def _send_window(
    messenger: Messenger, window: list[schema.Message], logger: logging.Logger
) -> list[schema.Response]:
    """One response per message of ``window``, in its order; a messenger that raises gives ERROR
    responses (the messages stay unsent)."""
    if len(window) > 1 and isinstance(messenger, PipelinedMessenger):
        try:
            responses = messenger.send_messages(window)
            if [r.message_id for r in responses] != [m.id for m in window]:
                raise RuntimeError("its responses do not match the messages it was given")
            return responses
        except Exception as exc:
            logger.exception(
                "%s could not send %d messages from %s",
                type(messenger).__name__,
                len(window),
                window[0].id,
            )
            return [_raised(message, exc) for message in window]
    responses = []
    for message in window:
        try:
            responses.append(messenger.send_message(message))
        except Exception as exc:
            logger.exception("%s could not send message %s", type(messenger).__name__, message.id)
            responses.append(_raised(message, exc))
    return responses


def generate_send_messages_task(
    message_store: MessageStore,
    messengers: list[Messenger] | None = None,
    logger: logging.Logger = logger,
) -> Callable[[], None]:
    targets = list(messengers or [])

    def size() -> int:
        # A sequential messenger (an HTTP one) keeps the window at 1: taking more messages from
        # the store before its responses are in would let the store's early stop come too late.
        # Asked before each window, as a messenger may size it to how fast its server answers.
        sizes = (m.window if isinstance(m, PipelinedMessenger) else 1 for m in targets)
        return max(1, min(sizes, default=1))

    def send_messages_task() -> None:
        if not targets:
            return
        # Lazily, a window at a time: the store may end the run between two windows.
        messages = iter(message_store.get_unsent_messages())
        while window := list(itertools.islice(messages, size())):
            for messenger in targets:
                for response in _send_window(messenger, window, logger):
                    message_store.store_response(response)

    return send_messages_task


def generate_summariser_task(
    summarisers: list[Summariser],
    message_store: MessageStore,
    logger: logging.Logger = logger,
) -> Callable[[], None]:
    def summary_task() -> None:
        now = _now()
        for summariser in summarisers:
            try:
                message = summariser.build_summary(now)
            except Exception:
                logger.exception(
                    "%s could not build the summary at %s",
                    type(summariser).__name__,
                    now.isoformat(),
                )
                raise
            if message is not None:
                message_store.store_message(message)

    return summary_task


def heartbeat_to_json(heartbeat: schema.Heartbeat) -> str:
    # No deployment: the key is left out, so the content is what it was before it existed.
    leave_out = {"deployment"} if heartbeat.deployment is None else None
    return json.dumps(heartbeat.model_dump(mode="json", exclude=leave_out), separators=(",", ":"))


def _device_id(given: str | Callable[[], str] | None) -> str:
    if given is None:
        return hardware_id() or "unknown"
    return given() if callable(given) else given


def generate_heartbeat_task(
    messengers: list[Messenger],
    metrics: list[MetricFn] | None = None,
    serializer: HeartbeatSerializer = heartbeat_to_json,
    logger: logging.Logger = logger,
    *,
    device_id: str | Callable[[], str] | None = None,
    status: Callable[[], str] | None = None,
    deployment: Callable[[], schema.HeartbeatDeployment | None] | None = None,
) -> Callable[[], None]:
    """acoustack's additions to acoupi's parameters, all part of the heartbeat this builds:
    ``device_id``, the id or how to learn it at each run (acoustack's services learn it from
    storage; without one, the hardware's id, else "unknown"), ``status``, the device's verdict
    at each run ("ok" or "degraded: …"; without it "ok"), and ``deployment``, where the device
    is (without it, none is sent)."""
    collectors = list(metrics or [])

    def heartbeat_task() -> None:
        values = []
        for collect in collectors:
            try:
                values.append(collect())
            except Exception:
                logger.exception(
                    "heartbeat metric %s failed; sent without it",
                    getattr(collect, "__name__", collect),
                )
        heartbeat = schema.Heartbeat(
            device_id=_device_id(device_id),
            sent_at=_now(),
            status=status() if status is not None else "ok",
            metrics=values,
            deployment=deployment() if deployment is not None else None,
        )
        content = serializer(heartbeat)
        message = schema.Message(
            content=content.decode() if isinstance(content, bytes) else content
        )
        failures = 0
        for messenger in messengers:
            response = messenger.send_message(message)
            if response.status is not schema.ResponseStatus.SUCCESS:
                failures += 1
                logger.warning(
                    "heartbeat via %s: %s %s",
                    type(messenger).__name__,
                    response.status,
                    response.content,
                )
        if messengers and failures == len(messengers):
            raise RuntimeError(f"heartbeat not delivered by any of {len(messengers)} messenger(s)")

    return heartbeat_task
