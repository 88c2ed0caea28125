"""What every service agrees on: Celery tasks (name, queue, arguments, time limits) and queues, the
event exchange and its routing keys.

Defined here once; no service spells one of these strings itself, and the sender and the receiver
of a task build and read its arguments with the same model (``TASK_ARGUMENTS``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from acoustack import schema
from acoustack.errors import InvalidArgumentError, validation_message
from acoustack.program_config import (
    DetectionConfig,
    FileManagementConfig,
    HeartbeatConfig,
    MessagingConfig,
    RecordingConfig,
    Section,
    SummaryConfig,
    read_section,
)


class Queue(StrEnum):
    # Recording runs one at a time: a microphone is a single device.
    RECORDING = "recording"
    DETECTION = "detection"
    # File management: storage's worker, which owns the recordings' final places.
    FILES = "files"
    # Messaging, summaries and heartbeats: the messenger's worker.
    DEFAULT = "default"


class Task(StrEnum):
    RECORD = "acoustack.record"
    DETECT = "acoustack.detect"
    MANAGE_FILES = "acoustack.manage_files"
    SEND_MESSAGES = "acoustack.send_messages"
    SUMMARISE = "acoustack.summarise"
    HEARTBEAT = "acoustack.heartbeat"


TASK_QUEUES: dict[Task, Queue] = {
    Task.RECORD: Queue.RECORDING,
    Task.DETECT: Queue.DETECTION,
    Task.MANAGE_FILES: Queue.FILES,
    Task.SEND_MESSAGES: Queue.DEFAULT,
    Task.SUMMARISE: Queue.DEFAULT,
    Task.HEARTBEAT: Queue.DEFAULT,
}


@dataclass(frozen=True)
class TimeLimits:
    """A task running longer than ``soft_s`` is asked to stop (it can clean up; None: never asked);
    past ``hard_s`` its pool process is killed."""

    soft_s: float | None
    hard_s: float


# A hung send, file move or model call is stopped after ten minutes. A recording's own limits are
# its duration plus a margin, which the scheduler sends with each slot (``record_time_limits``);
# the one here bounds a `record` sent without them (the longest recording a program allows). It
# has no soft limit of its own: the pool applies a hard limit below a soft one only once the soft
# one has fired, so a default soft limit would defeat a hard limit sent alone.
TASK_TIME_LIMITS: dict[Task, TimeLimits] = {
    Task.RECORD: TimeLimits(None, 3660.0),
    Task.DETECT: TimeLimits(600.0, 630.0),
    Task.MANAGE_FILES: TimeLimits(600.0, 630.0),
    Task.SEND_MESSAGES: TimeLimits(600.0, 630.0),
    Task.SUMMARISE: TimeLimits(600.0, 630.0),
    Task.HEARTBEAT: TimeLimits(600.0, 630.0),
}


def record_time_limits(duration_s: float) -> TimeLimits:
    """A slot may take its duration and half a minute (a device that opens slowly), then it is
    asked to stop; half a minute later it is killed."""
    return TimeLimits(duration_s + 30.0, duration_s + 60.0)


# --- task arguments ------------------------------------------------------------------------------


class TaskArguments(BaseModel):
    """What a task is sent with: always the program's whole configuration, from which each service
    reads the sections it acts on, so a changed setting applies at the next run; plus what the
    task itself needs. The sender builds it, the receiver reads it back with ``parse``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: ClassVar[Task]
    # The sections the receiving service acts on; validated by ``parse``, read with ``section``.
    sections: ClassVar[dict[str, type[Section]]] = {}

    program_config: dict[str, Any] = Field(
        default_factory=dict, description="the program's configuration, as the scheduler has it"
    )
    _parsed: dict[str, Section | None] = PrivateAttr(default_factory=dict)

    @classmethod
    def parse(cls, args: tuple = (), kwargs: dict[str, Any] | None = None) -> Self:
        """The arguments of a received task. InvalidArgumentError names the field at fault, e.g.
        ``program_config.recording.duration_s: Input should be greater than 0``."""
        if args:
            raise InvalidArgumentError(
                f"{cls.task.value} takes keyword arguments only, got {len(args)} positional "
                f"({', '.join(cls.model_fields)} by name)"
            )
        try:
            parsed = cls.model_validate(kwargs or {})
        except ValidationError as exc:
            raise InvalidArgumentError(validation_message(exc, "")) from None
        for name, section in cls.sections.items():
            if name not in parsed.program_config:
                parsed._parsed[name] = None
                continue
            try:
                parsed._parsed[name] = section.model_validate(parsed.program_config[name])
            except ValidationError as exc:
                raise InvalidArgumentError(
                    validation_message(exc, f"program_config.{name}")
                ) from None
        return parsed

    def section(self, name: str) -> Section | None:
        """One of ``sections``, validated; None when the program has no such section."""
        if name not in self._parsed:
            self._parsed[name] = read_section(self.program_config, name, self.sections[name])
        return self._parsed[name]

    def as_kwargs(self) -> dict[str, Any]:
        """The JSON the task is sent with."""
        return self.model_dump(mode="json")


class RecordArguments(TaskArguments):
    task = Task.RECORD
    sections = {"recording": RecordingConfig}

    # The scheduler owns the deployment lifecycle and says which deployment a slot belongs to
    # (null: none is active, nothing is recorded), so the recorder needs no storage call per slot
    # and records through a storage outage. "ask": the sender does not know; the recorder asks.
    deployment: schema.Deployment | Literal["ask"] | None = "ask"

    @property
    def recording(self) -> RecordingConfig | None:
        return self.section("recording")  # type: ignore[return-value]


class DetectArguments(TaskArguments):
    task = Task.DETECT
    sections = {"detection": DetectionConfig}

    recording_id: uuid.UUID
    # The recording as the recorder handed it over (saves the detector a lookup); trusted on a
    # first delivery only.
    recording: schema.Recording | None = None

    @property
    def detection(self) -> DetectionConfig | None:
        return self.section("detection")  # type: ignore[return-value]


class ManageFilesArguments(TaskArguments):
    task = Task.MANAGE_FILES
    sections = {"file_management": FileManagementConfig}

    @property
    def file_management(self) -> FileManagementConfig | None:
        return self.section("file_management")  # type: ignore[return-value]


class SendMessagesArguments(TaskArguments):
    task = Task.SEND_MESSAGES
    sections = {"messaging": MessagingConfig}

    @property
    def messaging(self) -> MessagingConfig | None:
        return self.section("messaging")  # type: ignore[return-value]


class SummariseArguments(TaskArguments):
    task = Task.SUMMARISE
    sections = {"summary": SummaryConfig}

    @property
    def summary(self) -> SummaryConfig | None:
        return self.section("summary")  # type: ignore[return-value]


class HeartbeatArguments(TaskArguments):
    task = Task.HEARTBEAT
    sections = {
        "messaging": MessagingConfig,
        "heartbeat": HeartbeatConfig,
        "recording": RecordingConfig,
    }

    @property
    def messaging(self) -> MessagingConfig | None:
        return self.section("messaging")  # type: ignore[return-value]


TASK_ARGUMENTS: dict[Task, type[TaskArguments]] = {
    cls.task: cls
    for cls in (
        RecordArguments,
        DetectArguments,
        ManageFilesArguments,
        SendMessagesArguments,
        SummariseArguments,
        HeartbeatArguments,
    )
}


EVENTS_EXCHANGE = "acoustack.events"


class RoutingKey(StrEnum):
    DEPLOYMENT_STARTED = "deployment.started"
    DEPLOYMENT_ENDED = "deployment.ended"


# A task sent with this header is run under the profiler; the worker sends the profile to the
# queue the header names (`acoustack task run NAME --profile`).
PROFILE_REPLY_HEADER = "acoustack_profile_reply_to"
PROFILE_QUEUE_PREFIX = "acoustack.profile."
