"""The component interfaces. They are Protocols: a class needs the methods, not a base class."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

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
