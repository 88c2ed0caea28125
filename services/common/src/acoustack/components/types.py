"""The component interfaces. They are Protocols: a class needs the methods, not a base class."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from acoustack import schema


@runtime_checkable
class Model(Protocol):
    """A classifier: runs on a recording and says what it found."""

    name: str
    version: str

    def run(self, recording: schema.Recording) -> schema.ModelOutput: ...

    def check(self) -> None:
        """Self-check on a known input; raises with a clear message when the model is not sound."""
        ...


@runtime_checkable
class ProcessingFilter(Protocol):
    def should_process_recording(self, recording: schema.Recording) -> bool: ...


@runtime_checkable
class ModelOutputCleaner(Protocol):
    def clean(self, model_output: schema.ModelOutput) -> schema.ModelOutput: ...


@runtime_checkable
class MessageBuilder(Protocol):
    def build_message(self, model_output: schema.ModelOutput) -> schema.Message | None:
        """A message for the outbox, or None when there is nothing worth sending."""
        ...


@runtime_checkable
class RecordingCondition(Protocol):
    def should_record(self, now: dt.datetime) -> bool: ...


@runtime_checkable
class AudioRecorder(Protocol):
    def record(self, deployment: schema.Deployment) -> schema.Recording: ...


@runtime_checkable
class Store(Protocol):
    """What the task templates need of a store."""

    def get_current_deployment(self) -> schema.Deployment: ...

    def store_recording(self, recording: schema.Recording) -> Any: ...

    def store_model_output(self, model_output: schema.ModelOutput) -> Any: ...

    def get_recordings_by_path(
        self, paths: Sequence[Path]
    ) -> list[tuple[schema.Recording, list[schema.ModelOutput]]]: ...

    def update_recording_path(self, recording: schema.Recording, new_path: Path) -> Any: ...

    def mark_recording_deleted(self, recording: schema.Recording) -> Any:
        """acoustack's addition: the store learns that a recording's file is gone."""
        ...


@runtime_checkable
class MessageStore(Protocol):
    def store_message(self, message: schema.Message) -> Any: ...

    def get_unsent_messages(self) -> list[schema.Message]: ...

    def store_response(self, response: schema.Response) -> Any: ...


@runtime_checkable
class Messenger(Protocol):
    def send_message(self, message: schema.Message) -> schema.Response: ...


@runtime_checkable
class PipelinedMessenger(Messenger, Protocol):
    """acoustack's addition: a messenger that keeps several messages in flight. The send task
    hands it up to ``window`` messages at once; it answers with one response per message, in the
    same order, each message's own outcome."""

    window: int

    def send_messages(self, messages: Sequence[schema.Message]) -> list[schema.Response]: ...


@runtime_checkable
class Summariser(Protocol):
    def build_summary(self, now: dt.datetime) -> schema.Message | None: ...


@runtime_checkable
class RecordingSavingFilter(Protocol):
    def should_save_recording(
        self, recording: schema.Recording, model_outputs: Sequence[schema.ModelOutput]
    ) -> bool: ...


@runtime_checkable
class RecordingSavingManager(Protocol):
    def save_recording(
        self, recording: schema.Recording, model_outputs: Sequence[schema.ModelOutput]
    ) -> Path | None:
        """Where the recording should go, or None to leave it to the next manager."""
        ...
