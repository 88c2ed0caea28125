"""Programs: what a device does, chosen by name, each with a typed configuration.

``default`` records and saves; ``connected`` adds messaging and heartbeats; ``detection`` adds the
model. A third-party program is loaded by import path (``package.module:ProgramClass``). A program
says which periodic tasks run and when (its beat schedule, on aligned slots) and which workers
consume which queues (the recording queue always with concurrency 1: one microphone).
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from acoustack.errors import InvalidArgumentError, validation_message
from acoustack.names import Queue, Task
from acoustack_scheduler.schedules import aligned_schedule


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RecordingConfig(Section):
    duration_s: Annotated[
        float, Field(gt=0, le=3600, description="length of each recording, seconds")
    ] = 3.0
    interval_s: Annotated[
        float, Field(gt=0, le=86400, description="a recording starts every this many seconds")
    ] = 10.0
    offset_s: Annotated[
        float, Field(ge=0, description="slots start this many seconds after the interval boundary")
    ] = 0.0
    samplerate_hz: Annotated[
        int, Field(gt=0, le=1_000_000, description="capture rate, Hz (384000 for bats)")
    ] = 384_000
    channels: Annotated[int, Field(ge=1, le=8, description="input channels")] = 1
    time_expansion: Annotated[float, Field(gt=0, le=100, description="1 for real time")] = 1.0
    daily_windows: Annotated[
        str, Field(description="local windows to record in, e.g. 20:00-06:00; empty: all day")
    ] = ""
    timezone: Annotated[str, Field(description="IANA time zone of the daily windows")] = "UTC"
    sun_window: Annotated[
        str, Field(description="record around a sun event at the deployment, e.g. dusk-30m+3h")
    ] = ""
    min_free_disk_mb: Annotated[
        int, Field(ge=0, description="stop recording below this much free disk")
    ] = 500


class FileManagementConfig(Section):
    interval_s: Annotated[
        float, Field(gt=0, description="how often temporary recordings are saved or deleted")
    ] = 120.0
    save_all: Annotated[bool, Field(description="keep every recording (no saving filters)")] = True
    destination: Annotated[
        str, Field(description="where saved recordings go, in date folders Y/M/D")
    ] = "/data/recordings"


class MessagingConfig(Section):
    interval_s: Annotated[float, Field(gt=0, description="how often the outbox is sent")] = 120.0
    max_per_run: Annotated[
        int, Field(ge=1, le=10_000, description="most messages sent per run")
    ] = 100
    order: Annotated[
        Literal["oldest-first", "newest-first"], Field(description="which messages go first")
    ] = "oldest-first"
    http_url: Annotated[
        str, Field(description="HTTP endpoint messages are POSTed to; empty: none")
    ] = ""
    mqtt_host: Annotated[str, Field(description="MQTT broker host; empty: none")] = ""
    mqtt_port: Annotated[int, Field(ge=1, le=65535, description="MQTT broker port")] = 1883
    mqtt_topic: Annotated[str, Field(description="MQTT topic messages are published to")] = (
        "acoustack/messages"
    )


class HeartbeatConfig(Section):
    interval_s: Annotated[float, Field(gt=0, description="how often a heartbeat is sent")] = 3600.0


class DetectionConfig(Section):
    model: Annotated[
        str, Field(description="batdetect2 (bundled), or grpc://host:port for a model server")
    ] = "batdetect2"
    threshold: Annotated[
        float, Field(ge=0, le=1, description="detections and tags below this score are dropped")
    ] = 0.2
    message_threshold: Annotated[
        float | None,
        Field(
            ge=0,
            le=1,
            description="send only detections at least this confident; empty: the whole output",
        ),
    ] = None


class DefaultProgramConfig(Section):
    recording: Annotated[RecordingConfig, Field(description="when and how to record")] = (
        RecordingConfig()
    )
    file_management: Annotated[
        FileManagementConfig, Field(description="what happens to recordings")
    ] = FileManagementConfig()


class ConnectedProgramConfig(DefaultProgramConfig):
    messaging: Annotated[
        MessagingConfig, Field(description="sending messages to a remote server")
    ] = MessagingConfig()
    heartbeat: Annotated[HeartbeatConfig, Field(description="the device saying it is alive")] = (
        HeartbeatConfig()
    )


class DetectionProgramConfig(ConnectedProgramConfig):
    detection: Annotated[DetectionConfig, Field(description="the model run on each recording")] = (
        DetectionConfig()
    )


@dataclass(frozen=True)
class WorkerSpec:
    name: str
    queues: tuple[str, ...]
    concurrency: int


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

    def beat_schedule(self, config: Section) -> dict[str, dict[str, Any]]:
        entries = {}
        for name, (task, interval, offset) in self.periodic_tasks(config).items():
            if not 0 <= offset < interval:
                raise InvalidArgumentError(
                    f"{name}: the offset {offset:g} s must be less than the interval {interval:g} s"
                )
            entries[name] = {
                "task": task.value,
                "schedule": aligned_schedule(dt.timedelta(seconds=interval), offset),
                # A slot's task is worth nothing once the next slot has come.
                "options": {"expires": interval},
            }
        return entries

    def workers(self, config: Section) -> list[WorkerSpec]:
        return [
            WorkerSpec("recording", (Queue.RECORDING.value,), 1),
            WorkerSpec("default", (Queue.DEFAULT.value,), 1),
        ]


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


class DetectionProgram(ConnectedProgram):
    name = "detection"
    config_schema = DetectionProgramConfig

    def workers(self, config: Section) -> list[WorkerSpec]:
        return [*super().workers(config), WorkerSpec("detection", (Queue.DETECTION.value,), 2)]


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
