import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RecordingStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECORDING_STATUS_UNSPECIFIED: _ClassVar[RecordingStatus]
    RECORDING_STATUS_TEMPORARY: _ClassVar[RecordingStatus]
    RECORDING_STATUS_SAVED: _ClassVar[RecordingStatus]
    RECORDING_STATUS_DELETED: _ClassVar[RecordingStatus]
    RECORDING_STATUS_FAILED: _ClassVar[RecordingStatus]

class PredictionType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PREDICTION_TYPE_UNSPECIFIED: _ClassVar[PredictionType]
    PREDICTION_TYPE_PRESENCE: _ClassVar[PredictionType]
    PREDICTION_TYPE_SEQUENCE: _ClassVar[PredictionType]
    PREDICTION_TYPE_EVENT: _ClassVar[PredictionType]

class MessageState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_STATE_UNSPECIFIED: _ClassVar[MessageState]
    MESSAGE_STATE_DUE: _ClassVar[MessageState]
    MESSAGE_STATE_BACKING_OFF: _ClassVar[MessageState]
    MESSAGE_STATE_SENT: _ClassVar[MessageState]
    MESSAGE_STATE_DEAD: _ClassVar[MessageState]

class ResponseStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESPONSE_STATUS_UNSPECIFIED: _ClassVar[ResponseStatus]
    RESPONSE_STATUS_SUCCESS: _ClassVar[ResponseStatus]
    RESPONSE_STATUS_FAILED: _ClassVar[ResponseStatus]
    RESPONSE_STATUS_ERROR: _ClassVar[ResponseStatus]
    RESPONSE_STATUS_TIMEOUT: _ClassVar[ResponseStatus]
RECORDING_STATUS_UNSPECIFIED: RecordingStatus
RECORDING_STATUS_TEMPORARY: RecordingStatus
RECORDING_STATUS_SAVED: RecordingStatus
RECORDING_STATUS_DELETED: RecordingStatus
RECORDING_STATUS_FAILED: RecordingStatus
PREDICTION_TYPE_UNSPECIFIED: PredictionType
PREDICTION_TYPE_PRESENCE: PredictionType
PREDICTION_TYPE_SEQUENCE: PredictionType
PREDICTION_TYPE_EVENT: PredictionType
MESSAGE_STATE_UNSPECIFIED: MessageState
MESSAGE_STATE_DUE: MessageState
MESSAGE_STATE_BACKING_OFF: MessageState
MESSAGE_STATE_SENT: MessageState
MESSAGE_STATE_DEAD: MessageState
RESPONSE_STATUS_UNSPECIFIED: ResponseStatus
RESPONSE_STATUS_SUCCESS: ResponseStatus
RESPONSE_STATUS_FAILED: ResponseStatus
RESPONSE_STATUS_ERROR: ResponseStatus
RESPONSE_STATUS_TIMEOUT: ResponseStatus

class Deployment(_message.Message):
    __slots__ = ("id", "name", "latitude", "longitude", "started_at", "ended_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LATITUDE_FIELD_NUMBER: _ClassVar[int]
    LONGITUDE_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    latitude: float
    longitude: float
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., latitude: _Optional[float] = ..., longitude: _Optional[float] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Recording(_message.Message):
    __slots__ = ("id", "deployment_id", "device_id", "source_id", "path", "started_at", "duration_s", "capture_samplerate_hz", "channels", "time_expansion", "status", "failure_reason", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_SAMPLERATE_HZ_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    TIME_EXPANSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    deployment_id: str
    device_id: str
    source_id: str
    path: str
    started_at: _timestamp_pb2.Timestamp
    duration_s: float
    capture_samplerate_hz: int
    channels: int
    time_expansion: float
    status: RecordingStatus
    failure_reason: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., deployment_id: _Optional[str] = ..., device_id: _Optional[str] = ..., source_id: _Optional[str] = ..., path: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration_s: _Optional[float] = ..., capture_samplerate_hz: _Optional[int] = ..., channels: _Optional[int] = ..., time_expansion: _Optional[float] = ..., status: _Optional[_Union[RecordingStatus, str]] = ..., failure_reason: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Tag(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class PredictedTag(_message.Message):
    __slots__ = ("tag", "confidence")
    TAG_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    tag: Tag
    confidence: float
    def __init__(self, tag: _Optional[_Union[Tag, _Mapping]] = ..., confidence: _Optional[float] = ...) -> None: ...

class BoundingBox(_message.Message):
    __slots__ = ("start_time_s", "end_time_s", "low_freq_hz", "high_freq_hz")
    START_TIME_S_FIELD_NUMBER: _ClassVar[int]
    END_TIME_S_FIELD_NUMBER: _ClassVar[int]
    LOW_FREQ_HZ_FIELD_NUMBER: _ClassVar[int]
    HIGH_FREQ_HZ_FIELD_NUMBER: _ClassVar[int]
    start_time_s: float
    end_time_s: float
    low_freq_hz: float
    high_freq_hz: float
    def __init__(self, start_time_s: _Optional[float] = ..., end_time_s: _Optional[float] = ..., low_freq_hz: _Optional[float] = ..., high_freq_hz: _Optional[float] = ...) -> None: ...

class Detection(_message.Message):
    __slots__ = ("id", "prediction_type", "box", "detection_score", "tags")
    ID_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_TYPE_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    DETECTION_SCORE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    id: str
    prediction_type: PredictionType
    box: BoundingBox
    detection_score: float
    tags: _containers.RepeatedCompositeFieldContainer[PredictedTag]
    def __init__(self, id: _Optional[str] = ..., prediction_type: _Optional[_Union[PredictionType, str]] = ..., box: _Optional[_Union[BoundingBox, _Mapping]] = ..., detection_score: _Optional[float] = ..., tags: _Optional[_Iterable[_Union[PredictedTag, _Mapping]]] = ...) -> None: ...

class ModelOutput(_message.Message):
    __slots__ = ("id", "recording_id", "model_name", "model_version", "tags", "detections", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    RECORDING_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    recording_id: str
    model_name: str
    model_version: str
    tags: _containers.RepeatedCompositeFieldContainer[PredictedTag]
    detections: _containers.RepeatedCompositeFieldContainer[Detection]
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., recording_id: _Optional[str] = ..., model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., tags: _Optional[_Iterable[_Union[PredictedTag, _Mapping]]] = ..., detections: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Message(_message.Message):
    __slots__ = ("id", "content", "created_at", "priority", "attempts", "last_attempt_at", "failed_tries", "refusals", "next_attempt_at", "sent_at", "dead_at", "last_status", "state")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    FAILED_TRIES_FIELD_NUMBER: _ClassVar[int]
    REFUSALS_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    DEAD_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_STATUS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    id: str
    content: str
    created_at: _timestamp_pb2.Timestamp
    priority: int
    attempts: int
    last_attempt_at: _timestamp_pb2.Timestamp
    failed_tries: int
    refusals: int
    next_attempt_at: _timestamp_pb2.Timestamp
    sent_at: _timestamp_pb2.Timestamp
    dead_at: _timestamp_pb2.Timestamp
    last_status: ResponseStatus
    state: MessageState
    def __init__(self, id: _Optional[str] = ..., content: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., priority: _Optional[int] = ..., attempts: _Optional[int] = ..., last_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., failed_tries: _Optional[int] = ..., refusals: _Optional[int] = ..., next_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., dead_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_status: _Optional[_Union[ResponseStatus, str]] = ..., state: _Optional[_Union[MessageState, str]] = ...) -> None: ...

class MessageEntry(_message.Message):
    __slots__ = ("message", "last_response")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LAST_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    message: Message
    last_response: Response
    def __init__(self, message: _Optional[_Union[Message, _Mapping]] = ..., last_response: _Optional[_Union[Response, _Mapping]] = ...) -> None: ...

class OutboxCounts(_message.Message):
    __slots__ = ("due", "backing_off", "dead", "sent", "next_attempt_at")
    DUE_FIELD_NUMBER: _ClassVar[int]
    BACKING_OFF_FIELD_NUMBER: _ClassVar[int]
    DEAD_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    due: int
    backing_off: int
    dead: int
    sent: int
    next_attempt_at: _timestamp_pb2.Timestamp
    def __init__(self, due: _Optional[int] = ..., backing_off: _Optional[int] = ..., dead: _Optional[int] = ..., sent: _Optional[int] = ..., next_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Response(_message.Message):
    __slots__ = ("message_id", "status", "content", "received_at", "retry_after_s")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_S_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    status: ResponseStatus
    content: str
    received_at: _timestamp_pb2.Timestamp
    retry_after_s: float
    def __init__(self, message_id: _Optional[str] = ..., status: _Optional[_Union[ResponseStatus, str]] = ..., content: _Optional[str] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., retry_after_s: _Optional[float] = ...) -> None: ...

class RetentionState(_message.Message):
    __slots__ = ("last_run_at", "destination", "max_age_days", "keep_free_mb", "keep_best_per_species", "free_mb", "short_of_free_mb", "kept_as_best", "window_s", "deleted_for_age", "deleted_for_space", "highest_deleted_score")
    LAST_RUN_AT_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_DAYS_FIELD_NUMBER: _ClassVar[int]
    KEEP_FREE_MB_FIELD_NUMBER: _ClassVar[int]
    KEEP_BEST_PER_SPECIES_FIELD_NUMBER: _ClassVar[int]
    FREE_MB_FIELD_NUMBER: _ClassVar[int]
    SHORT_OF_FREE_MB_FIELD_NUMBER: _ClassVar[int]
    KEPT_AS_BEST_FIELD_NUMBER: _ClassVar[int]
    WINDOW_S_FIELD_NUMBER: _ClassVar[int]
    DELETED_FOR_AGE_FIELD_NUMBER: _ClassVar[int]
    DELETED_FOR_SPACE_FIELD_NUMBER: _ClassVar[int]
    HIGHEST_DELETED_SCORE_FIELD_NUMBER: _ClassVar[int]
    last_run_at: _timestamp_pb2.Timestamp
    destination: str
    max_age_days: float
    keep_free_mb: int
    keep_best_per_species: int
    free_mb: float
    short_of_free_mb: float
    kept_as_best: int
    window_s: float
    deleted_for_age: int
    deleted_for_space: int
    highest_deleted_score: float
    def __init__(self, last_run_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., destination: _Optional[str] = ..., max_age_days: _Optional[float] = ..., keep_free_mb: _Optional[int] = ..., keep_best_per_species: _Optional[int] = ..., free_mb: _Optional[float] = ..., short_of_free_mb: _Optional[float] = ..., kept_as_best: _Optional[int] = ..., window_s: _Optional[float] = ..., deleted_for_age: _Optional[int] = ..., deleted_for_space: _Optional[int] = ..., highest_deleted_score: _Optional[float] = ...) -> None: ...

class Metric(_message.Message):
    __slots__ = ("name", "value", "unit")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    unit: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ..., unit: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("device_id", "sent_at", "status", "metrics")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    sent_at: _timestamp_pb2.Timestamp
    status: str
    metrics: _containers.RepeatedCompositeFieldContainer[Metric]
    def __init__(self, device_id: _Optional[str] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[str] = ..., metrics: _Optional[_Iterable[_Union[Metric, _Mapping]]] = ...) -> None: ...
