"""Programs: what a device does, chosen by name, each with a typed configuration.

``default`` records and saves; ``connected`` adds messaging and heartbeats; ``detection`` adds the
model. A third-party program is loaded by import path (``package.module:ProgramClass``). A program
says which periodic tasks run and when (its beat schedule, on aligned slots), what each task is sent
with (``acoustack.names``: the whole configuration, so every service reads its own sections at
every run), and which queues must have a worker (the recording queue exactly one: one microphone;
how many the others have is each service's process count, e.g. DETECTOR_CONCURRENCY).
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import Field, ValidationError, model_validator

from acoustack.errors import InvalidArgumentError, validation_message
from acoustack.names import TASK_ARGUMENTS, Queue, Task, record_time_limits
from acoustack.program_config import (
    DetectionConfig,
    FileManagementConfig,
    HeartbeatConfig,
    MessagingConfig,
    RecordingConfig,
    Section,
    SummaryConfig,
)
from acoustack_scheduler.schedules import aligned_schedule


class DefaultProgramConfig(Section):
    recording: Annotated[RecordingConfig, Field(description="when and how to record")] = (
        RecordingConfig()
    )
    file_management: Annotated[
        FileManagementConfig, Field(description="what happens to recordings")
    ] = FileManagementConfig()

    @model_validator(mode="after")
    def _retention_acts_before_recording_stops(self) -> DefaultProgramConfig:
        # A floor at or under the recorder's own would stop recording before retention made room:
        # the device would sit silent on a full card with deletable recordings on it.
        keep_free, stop_at = self.file_management.keep_free_mb, self.recording.min_free_disk_mb
        if 0 < keep_free <= stop_at:
            raise ValueError(
                f"file_management.keep_free_mb: {keep_free} MB is not above "
                f"recording.min_free_disk_mb ({stop_at} MB), so recording would stop before "
                "retention makes room; raise keep_free_mb above it (or set it to 0 to delete "
                "nothing for space)"
            )
        return self


class ConnectedProgramConfig(DefaultProgramConfig):
    messaging: Annotated[
        MessagingConfig, Field(description="sending messages to a remote server")
    ] = MessagingConfig()
    heartbeat: Annotated[HeartbeatConfig, Field(description="the device saying it is alive")] = (
        HeartbeatConfig()
    )


class DetectionProgramConfig(ConnectedProgramConfig):
    # With a model to judge them, only the recordings a saving filter accepts are kept (a
    # detection at least file_management.saving_threshold confident): at 384 kHz, keeping all
    # would fill a 64 GB card in three days.
    file_management: Annotated[
        FileManagementConfig, Field(description="what happens to recordings")
    ] = FileManagementConfig(save_all=False)
    detection: Annotated[DetectionConfig, Field(description="the model run on each recording")] = (
        DetectionConfig()
    )
    summary: Annotated[SummaryConfig, Field(description="counts of what was detected")] = (
        SummaryConfig()
    )


@dataclass(frozen=True)
class WorkerSpec:
    name: str
    queues: tuple[str, ...]
    # The fewest worker processes on these queues the program needs.
    min_workers: int = 1


class Program:
    """Base of every program: a name, a configuration schema, a schedule and a worker layout."""

    name: ClassVar[str]
    config_schema: ClassVar[type[Section]]

    def parse_config(self, data: Mapping[str, Any] | None) -> Section:
        try:
            return self.config_schema.model_validate(dict(data or {}))
        except ValidationError as exc:
            raise InvalidArgumentError(validation_message(exc, "")) from None

    def periodic_tasks(self, config: Section) -> dict[str, tuple[Task, float, float]]:
        """Entry name → (task, interval s, offset s)."""
        recording = config.recording
        return {
            "record": (Task.RECORD, recording.interval_s, recording.offset_s),
            "manage-files": (Task.MANAGE_FILES, config.file_management.interval_s, 0.0),
        }

    def beat_schedule(
        self,
        config: Section,
        extra_arguments: Callable[[Task], dict[str, Any]] = lambda task: {},
    ) -> dict[str, dict[str, Any]]:
        """The beat's entries; ``extra_arguments`` adds what a task needs beside the
        configuration (the scheduler's say on the deployment, for `record`)."""
        entries = {}
        for name, (task, interval, offset) in self.periodic_tasks(config).items():
            if not 0 <= offset < interval:
                raise InvalidArgumentError(
                    f"{name}: the offset {offset:g} s must be less than the interval {interval:g} s"
                )
            arguments = self.send_arguments(config, task, **extra_arguments(task))
            entries[name] = {
                "task": task.value,
                "schedule": aligned_schedule(dt.timedelta(seconds=interval), offset),
                "kwargs": arguments.pop("kwargs"),
                # A slot's task is worth nothing once the next slot has come.
                "options": {"expires": interval, **arguments},
            }
        return entries

    def send_arguments(self, config: Section, task: Task, **arguments: Any) -> dict[str, Any]:
        """What a task of this program is sent with, by the beat, `task run` or a flush.

        kwargs: the task's arguments (``acoustack.names``), which always carry the whole
        configuration, from which each service reads its own sections, so a changed setting
        applies at the next run; ``arguments`` adds what the task itself needs (the deployment,
        for `record`). A recording's time limits follow its duration (the other tasks' are in
        their contract): soft first (the task can clean up), then hard (killed).
        """
        built = TASK_ARGUMENTS[task](program_config=config.model_dump(mode="json"), **arguments)
        options: dict[str, Any] = {"kwargs": built.as_kwargs()}
        if task is Task.RECORD:
            limits = record_time_limits(config.recording.duration_s)
            options.update(soft_time_limit=limits.soft_s, time_limit=limits.hard_s)
        return options

    def workers(self, config: Section) -> list[WorkerSpec]:
        return [
            WorkerSpec("recording", (Queue.RECORDING.value,), 1),
            WorkerSpec("files", (Queue.FILES.value,), 1),
        ]


def expected_workers(workers: list[WorkerSpec]) -> dict[str, int]:
    """queue → the fewest worker processes the program needs on it."""
    expected: dict[str, int] = {}
    for spec in workers:
        for queue in spec.queues:
            expected[queue] = expected.get(queue, 0) + spec.min_workers
    return expected


class DefaultProgram(Program):
    name = "default"
    config_schema = DefaultProgramConfig


class ConnectedProgram(DefaultProgram):
    name = "connected"
    config_schema = ConnectedProgramConfig

    def periodic_tasks(self, config: Section) -> dict[str, tuple[Task, float, float]]:
        return {
            **super().periodic_tasks(config),
            "send-messages": (Task.SEND_MESSAGES, config.messaging.interval_s, 0.0),
            "heartbeat": (Task.HEARTBEAT, config.heartbeat.interval_s, 0.0),
        }

    def workers(self, config: Section) -> list[WorkerSpec]:
        return [*super().workers(config), WorkerSpec("messaging", (Queue.DEFAULT.value,), 1)]


class DetectionProgram(ConnectedProgram):
    name = "detection"
    config_schema = DetectionProgramConfig

    def periodic_tasks(self, config: Section) -> dict[str, tuple[Task, float, float]]:
        return {
            **super().periodic_tasks(config),
            "summarise": (Task.SUMMARISE, config.summary.interval_s, 0.0),
        }

    def workers(self, config: Section) -> list[WorkerSpec]:
        return [*super().workers(config), WorkerSpec("detection", (Queue.DETECTION.value,))]


BUILT_IN: dict[str, type[Program]] = {
    p.name: p for p in (DefaultProgram, ConnectedProgram, DetectionProgram)
}


def load_program(reference: str) -> Program:
    """A built-in program by name, or a third-party one by ``package.module:ClassName``."""
    if reference in BUILT_IN:
        return BUILT_IN[reference]()
    if ":" not in reference:
        names = ", ".join(BUILT_IN)
        raise InvalidArgumentError(
            f"program: {reference!r} is not a built-in program ({names}) nor a module:Class path"
        )
    module_name, _, class_name = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidArgumentError(
            f"program: cannot import {module_name!r} ({exc}); is its package installed?"
        ) from None
    program_class = getattr(module, class_name, None)
    if not (isinstance(program_class, type) and issubclass(program_class, Program)):
        raise InvalidArgumentError(f"program: {reference!r} is not a Program subclass")
    return program_class()
