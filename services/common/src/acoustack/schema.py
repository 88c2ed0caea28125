"""The data schema every service shares (pydantic).

Field names match the proto messages in proto/acoustack/v1, so a validation error's location reads the
same on both sides (e.g. ``model_output.detections.3.box.end_time_s``). Times are UTC and time-zone
aware; ids are UUIDs made where the record is born. Lengths, characters and time ranges come from
``acoustack.limits``: the store validates rows it reads with these records, and checks what it
writes against the same rules.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from acoustack import limits
from acoustack.errors import FieldError, problem_of


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _as_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            "must be time-zone aware (UTC); a naive time is ambiguous on a field device"
        )
    value = value.astimezone(dt.UTC)
    problem = limits.time_problem(value)
    if problem is not None:
        raise PydanticCustomError("time_range", problem)
    return value


def Line(min_length: int, max_length: int) -> Any:
    """A one-line string (names, ids, paths, tags) within these lengths, no control characters."""
    return Annotated[
        str,
        Field(min_length=min_length, max_length=max_length, pattern=limits.LINE_PATTERN),
    ]


def Text(min_length: int, max_length: int) -> Any:
    """Free text within these lengths: tabs and line breaks, no other control characters."""
    return Annotated[
        str,
        Field(min_length=min_length, max_length=max_length, pattern=limits.TEXT_PATTERN),
    ]


# Times are checked against the range the store keeps (limits.EARLIEST_TIME..LATEST_TIME).
UTCDatetime = Annotated[dt.datetime, AfterValidator(_as_utc)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonEmptyText = Line(1, limits.TEXT_CHARS)
Name = Line(1, limits.NAME_CHARS)
RecordingPath = NonEmptyText
FailureReason = Text(0, limits.REASON_CHARS)
_INT32_MAX = 2**31 - 1
Int32 = Annotated[int, Field(ge=-(2**31), le=_INT32_MAX)]  # a Postgres integer


class FieldCheck:
    """One field's type on its own, for a value that arrives without its record (a recording's
    new path, a query's path): ``check(value, "path")`` returns the value as the record would
    hold it, or raises FieldError naming ``field``."""

    def __init__(self, value_type: Any) -> None:
        self._adapter = TypeAdapter(value_type)

    def __call__(self, value: Any, field: str) -> Any:
        try:
            return self._adapter.validate_python(value)
        except ValidationError as exc:
            raise FieldError(field, problem_of(exc.errors()[0])) from None


check_path = FieldCheck(RecordingPath)
check_name = FieldCheck(Name)
check_tag_value = FieldCheck(Line(0, limits.TEXT_CHARS))
check_time = FieldCheck(UTCDatetime)
check_failure_reason = FieldCheck(FailureReason)
check_probability = FieldCheck(Annotated[Probability, Field(allow_inf_nan=False)])
check_samplerate = FieldCheck(Annotated[int, Field(gt=0, le=limits.MAX_SAMPLERATE_HZ)])
check_channels = FieldCheck(Annotated[int, Field(ge=1, le=limits.MAX_CHANNELS)])
check_time_expansion = FieldCheck(
    Annotated[float, Field(gt=0.0, le=limits.MAX_TIME_EXPANSION, allow_inf_nan=False)]
)


class Schema(BaseModel):
    # NaN and infinity are refused everywhere: a score or a time that is not a number is a bug upstream.
    # defer_build: a validator is built when its model is first used, so a service pays memory only
    # for the records it handles (the recorder never builds the model-output ones).
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, allow_inf_nan=False, defer_build=True
    )


class Deployment(Schema):
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    name: Name
    latitude: Annotated[float, Field(ge=-90.0, le=90.0)] | None = None
    longitude: Annotated[float, Field(ge=-180.0, le=180.0)] | None = None
    started_at: UTCDatetime = Field(default_factory=utc_now)
    ended_at: UTCDatetime | None = None

    @model_validator(mode="after")
    def _check(self) -> Deployment:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together: give both or neither")
        if self.ended_at is not None and self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        return self

    @property
    def active(self) -> bool:
        return self.ended_at is None


class RecordingStatus(enum.StrEnum):
    TEMPORARY = "temporary"
    SAVED = "saved"
    DELETED = "deleted"
    FAILED = "failed"


class Recording(Schema):
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    deployment_id: uuid.UUID
    device_id: NonEmptyText
    source_id: NonEmptyText = "default"
    path: RecordingPath
    started_at: UTCDatetime
    duration_s: Annotated[float, Field(ge=0.0, le=limits.LONGEST_RECORDING_S)]
    capture_samplerate_hz: Annotated[int, Field(gt=0, le=limits.MAX_SAMPLERATE_HZ)]
    channels: Annotated[int, Field(ge=1, le=limits.MAX_CHANNELS)] = 1
    time_expansion: Annotated[float, Field(gt=0.0, le=limits.MAX_TIME_EXPANSION)] = 1.0
    status: RecordingStatus = RecordingStatus.TEMPORARY
    failure_reason: FailureReason = ""
    created_at: UTCDatetime = Field(default_factory=utc_now)

    @property
    def header_samplerate_hz(self) -> int:
        """The rate written in the WAV header: time expansion slows the audio down."""
        return round(self.capture_samplerate_hz / self.time_expansion)


class Tag(Schema):
    key: Name
    value: Line(0, limits.TEXT_CHARS)


class PredictedTag(Schema):
    tag: Tag
    confidence: Probability = 1.0


class PredictionType(enum.StrEnum):
    PRESENCE = "presence"
    SEQUENCE = "sequence"
    EVENT = "event"


class BoundingBox(Schema):
    """Seconds from the start of the recording, and Hz."""

    start_time_s: Annotated[float, Field(ge=0.0)]
    end_time_s: Annotated[float, Field(ge=0.0)]
    low_freq_hz: Annotated[float, Field(ge=0.0)] = 0.0
    high_freq_hz: Annotated[float, Field(ge=0.0)] = 0.0

    @model_validator(mode="after")
    def _check(self) -> BoundingBox:
        if self.end_time_s < self.start_time_s:
            raise ValueError("end_time_s is before start_time_s")
        if self.high_freq_hz < self.low_freq_hz:
            raise ValueError("high_freq_hz is below low_freq_hz")
        return self


class Detection(Schema):
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    prediction_type: PredictionType = PredictionType.EVENT
    box: BoundingBox | None = None
    detection_score: Probability
    tags: list[PredictedTag] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Detection:
        if self.prediction_type is PredictionType.PRESENCE and self.box is not None:
            raise ValueError("a presence detection covers the whole recording: it has no box")
        if self.prediction_type is not PredictionType.PRESENCE and self.box is None:
            raise ValueError(f"a {self.prediction_type.value} detection needs a box")
        return self


class ModelOutput(Schema):
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    recording_id: uuid.UUID
    model_name: Name
    model_version: Line(0, limits.NAME_CHARS) = ""
    tags: list[PredictedTag] = Field(default_factory=list)
    detections: list[Detection] = Field(default_factory=list)
    created_at: UTCDatetime = Field(default_factory=utc_now)

    @model_validator(mode="after")
    def _check(self) -> ModelOutput:
        seen: set[uuid.UUID] = set()
        for d in self.detections:
            if d.id in seen:
                raise ValueError(f"detection id {d.id} is used twice in this output")
            seen.add(d.id)
        return self


class Message(Schema):
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    content: Text(1, limits.MESSAGE_CHARS)
    created_at: UTCDatetime = Field(default_factory=utc_now)
    priority: Int32 = 0
    attempts: Annotated[int, Field(ge=0, le=_INT32_MAX)] = 0
    last_attempt_at: UTCDatetime | None = None
    # The delivery state, kept by the store (docs/messaging.md, "Retries and dead letters").
    failed_tries: Annotated[int, Field(ge=0, le=_INT32_MAX)] = 0
    refusals: Annotated[int, Field(ge=0, le=_INT32_MAX)] = 0
    next_attempt_at: UTCDatetime | None = None
    sent_at: UTCDatetime | None = None
    dead_at: UTCDatetime | None = None
    last_status: ResponseStatus | None = None
    state: MessageState | None = None


class ResponseStatus(enum.StrEnum):
    SUCCESS = "success"
    FAILED = "failed"  # refused for good: counts towards dead letters
    ERROR = "error"  # temporary: retried with backoff
    TIMEOUT = "timeout"  # temporary


class MessageState(enum.StrEnum):
    DUE = "due"
    BACKING_OFF = "backing_off"
    SENT = "sent"
    DEAD = "dead"


class Response(Schema):
    message_id: uuid.UUID
    status: ResponseStatus
    content: Text(0, limits.RESPONSE_CHARS) = ""
    received_at: UTCDatetime = Field(default_factory=utc_now)
    # The receiver's Retry-After in seconds, when it gave one; not stored.
    retry_after_s: Annotated[float, Field(ge=0)] | None = None


class Metric(Schema):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    value: float
    unit: Annotated[str, Field(max_length=50)] = ""


class HeartbeatDeployment(Schema):
    """Where the device is: its current deployment, as a heartbeat carries it (a hub's map)."""

    id: uuid.UUID
    name: Name
    latitude: Annotated[float, Field(ge=-90.0, le=90.0)] | None = None
    longitude: Annotated[float, Field(ge=-180.0, le=180.0)] | None = None

    @model_validator(mode="after")
    def _check(self) -> HeartbeatDeployment:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together: give both or neither")
        return self


class Heartbeat(Schema):
    device_id: NonEmptyText
    sent_at: UTCDatetime = Field(default_factory=utc_now)
    status: Annotated[str, Field(max_length=200)] = "ok"
    metrics: list[Metric] = Field(default_factory=list)
    # None (left out of the JSON): no deployment active, or storage could not say.
    deployment: HeartbeatDeployment | None = None


class RecordingEntry(Schema):
    """A recording with the outputs of every model that processed it."""

    recording: Recording
    model_outputs: list[ModelOutput] = Field(default_factory=list)
