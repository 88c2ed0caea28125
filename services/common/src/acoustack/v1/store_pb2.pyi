import datetime

from acoustack.v1 import types_pb2 as _types_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SortOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SORT_ORDER_UNSPECIFIED: _ClassVar[SortOrder]
    SORT_ORDER_OLDEST_FIRST: _ClassVar[SortOrder]
    SORT_ORDER_NEWEST_FIRST: _ClassVar[SortOrder]

class TimeBucket(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIME_BUCKET_UNSPECIFIED: _ClassVar[TimeBucket]
    TIME_BUCKET_HOUR: _ClassVar[TimeBucket]
    TIME_BUCKET_DAY: _ClassVar[TimeBucket]
SORT_ORDER_UNSPECIFIED: SortOrder
SORT_ORDER_OLDEST_FIRST: SortOrder
SORT_ORDER_NEWEST_FIRST: SortOrder
TIME_BUCKET_UNSPECIFIED: TimeBucket
TIME_BUCKET_HOUR: TimeBucket
TIME_BUCKET_DAY: TimeBucket

class GetDeviceRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetDeviceResponse(_message.Message):
    __slots__ = ("device_id",)
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    def __init__(self, device_id: _Optional[str] = ...) -> None: ...

class GetRetentionRequest(_message.Message):
    __slots__ = ("window_s",)
    WINDOW_S_FIELD_NUMBER: _ClassVar[int]
    window_s: float
    def __init__(self, window_s: _Optional[float] = ...) -> None: ...

class GetRetentionResponse(_message.Message):
    __slots__ = ("retention",)
    RETENTION_FIELD_NUMBER: _ClassVar[int]
    retention: _types_pb2.RetentionState
    def __init__(self, retention: _Optional[_Union[_types_pb2.RetentionState, _Mapping]] = ...) -> None: ...

class StartDeploymentRequest(_message.Message):
    __slots__ = ("id", "name", "latitude", "longitude", "started_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LATITUDE_FIELD_NUMBER: _ClassVar[int]
    LONGITUDE_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    latitude: float
    longitude: float
    started_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., latitude: _Optional[float] = ..., longitude: _Optional[float] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StartDeploymentResponse(_message.Message):
    __slots__ = ("deployment",)
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    deployment: _types_pb2.Deployment
    def __init__(self, deployment: _Optional[_Union[_types_pb2.Deployment, _Mapping]] = ...) -> None: ...

class EndDeploymentRequest(_message.Message):
    __slots__ = ("deployment_id", "ended_at")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    ended_at: _timestamp_pb2.Timestamp
    def __init__(self, deployment_id: _Optional[str] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EndDeploymentResponse(_message.Message):
    __slots__ = ("deployment",)
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    deployment: _types_pb2.Deployment
    def __init__(self, deployment: _Optional[_Union[_types_pb2.Deployment, _Mapping]] = ...) -> None: ...

class GetCurrentDeploymentRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCurrentDeploymentResponse(_message.Message):
    __slots__ = ("deployment",)
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    deployment: _types_pb2.Deployment
    def __init__(self, deployment: _Optional[_Union[_types_pb2.Deployment, _Mapping]] = ...) -> None: ...

class GetDeploymentRequest(_message.Message):
    __slots__ = ("deployment_id",)
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    def __init__(self, deployment_id: _Optional[str] = ...) -> None: ...

class GetDeploymentResponse(_message.Message):
    __slots__ = ("deployment",)
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    deployment: _types_pb2.Deployment
    def __init__(self, deployment: _Optional[_Union[_types_pb2.Deployment, _Mapping]] = ...) -> None: ...

class StoreRecordingRequest(_message.Message):
    __slots__ = ("recording",)
    RECORDING_FIELD_NUMBER: _ClassVar[int]
    recording: _types_pb2.Recording
    def __init__(self, recording: _Optional[_Union[_types_pb2.Recording, _Mapping]] = ...) -> None: ...

class StoreRecordingResponse(_message.Message):
    __slots__ = ("recording", "created")
    RECORDING_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    recording: _types_pb2.Recording
    created: bool
    def __init__(self, recording: _Optional[_Union[_types_pb2.Recording, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class GetRecordingRequest(_message.Message):
    __slots__ = ("recording_id", "include_model_outputs")
    RECORDING_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_MODEL_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    recording_id: str
    include_model_outputs: bool
    def __init__(self, recording_id: _Optional[str] = ..., include_model_outputs: _Optional[bool] = ...) -> None: ...

class GetRecordingResponse(_message.Message):
    __slots__ = ("entry",)
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    entry: RecordingEntry
    def __init__(self, entry: _Optional[_Union[RecordingEntry, _Mapping]] = ...) -> None: ...

class RecordingEntry(_message.Message):
    __slots__ = ("recording", "model_outputs")
    RECORDING_FIELD_NUMBER: _ClassVar[int]
    MODEL_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    recording: _types_pb2.Recording
    model_outputs: _containers.RepeatedCompositeFieldContainer[_types_pb2.ModelOutput]
    def __init__(self, recording: _Optional[_Union[_types_pb2.Recording, _Mapping]] = ..., model_outputs: _Optional[_Iterable[_Union[_types_pb2.ModelOutput, _Mapping]]] = ...) -> None: ...

class GetRecordingsByPathRequest(_message.Message):
    __slots__ = ("paths", "include_model_outputs")
    PATHS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_MODEL_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    paths: _containers.RepeatedScalarFieldContainer[str]
    include_model_outputs: bool
    def __init__(self, paths: _Optional[_Iterable[str]] = ..., include_model_outputs: _Optional[bool] = ...) -> None: ...

class GetRecordingsByPathResponse(_message.Message):
    __slots__ = ("entries", "missing_paths")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    MISSING_PATHS_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[RecordingEntry]
    missing_paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, entries: _Optional[_Iterable[_Union[RecordingEntry, _Mapping]]] = ..., missing_paths: _Optional[_Iterable[str]] = ...) -> None: ...

class ListRecordingsRequest(_message.Message):
    __slots__ = ("deployment_id", "statuses", "started_from", "started_to", "include_model_outputs", "limit", "order")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    STARTED_FROM_FIELD_NUMBER: _ClassVar[int]
    STARTED_TO_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_MODEL_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    statuses: _containers.RepeatedScalarFieldContainer[_types_pb2.RecordingStatus]
    started_from: _timestamp_pb2.Timestamp
    started_to: _timestamp_pb2.Timestamp
    include_model_outputs: bool
    limit: int
    order: SortOrder
    def __init__(self, deployment_id: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[_types_pb2.RecordingStatus, str]]] = ..., started_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., include_model_outputs: _Optional[bool] = ..., limit: _Optional[int] = ..., order: _Optional[_Union[SortOrder, str]] = ...) -> None: ...

class ListRecordingsResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[RecordingEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[RecordingEntry, _Mapping]]] = ...) -> None: ...

class UpdateRecordingPathRequest(_message.Message):
    __slots__ = ("recording_id", "path", "status")
    RECORDING_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    recording_id: str
    path: str
    status: _types_pb2.RecordingStatus
    def __init__(self, recording_id: _Optional[str] = ..., path: _Optional[str] = ..., status: _Optional[_Union[_types_pb2.RecordingStatus, str]] = ...) -> None: ...

class UpdateRecordingPathResponse(_message.Message):
    __slots__ = ("recording",)
    RECORDING_FIELD_NUMBER: _ClassVar[int]
    recording: _types_pb2.Recording
    def __init__(self, recording: _Optional[_Union[_types_pb2.Recording, _Mapping]] = ...) -> None: ...

class MarkRecordingFailedRequest(_message.Message):
    __slots__ = ("recording_id", "reason", "only_if_status")
    RECORDING_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ONLY_IF_STATUS_FIELD_NUMBER: _ClassVar[int]
    recording_id: str
    reason: str
    only_if_status: _types_pb2.RecordingStatus
    def __init__(self, recording_id: _Optional[str] = ..., reason: _Optional[str] = ..., only_if_status: _Optional[_Union[_types_pb2.RecordingStatus, str]] = ...) -> None: ...

class MarkRecordingFailedResponse(_message.Message):
    __slots__ = ("recording",)
    RECORDING_FIELD_NUMBER: _ClassVar[int]
    recording: _types_pb2.Recording
    def __init__(self, recording: _Optional[_Union[_types_pb2.Recording, _Mapping]] = ...) -> None: ...

class MarkRecordingDeletedRequest(_message.Message):
    __slots__ = ("recording_id",)
    RECORDING_ID_FIELD_NUMBER: _ClassVar[int]
    recording_id: str
    def __init__(self, recording_id: _Optional[str] = ...) -> None: ...

class MarkRecordingDeletedResponse(_message.Message):
    __slots__ = ("recording",)
    RECORDING_FIELD_NUMBER: _ClassVar[int]
    recording: _types_pb2.Recording
    def __init__(self, recording: _Optional[_Union[_types_pb2.Recording, _Mapping]] = ...) -> None: ...

class StoreModelOutputRequest(_message.Message):
    __slots__ = ("model_output", "messages")
    MODEL_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    model_output: _types_pb2.ModelOutput
    messages: _containers.RepeatedCompositeFieldContainer[_types_pb2.Message]
    def __init__(self, model_output: _Optional[_Union[_types_pb2.ModelOutput, _Mapping]] = ..., messages: _Optional[_Iterable[_Union[_types_pb2.Message, _Mapping]]] = ...) -> None: ...

class StoreModelOutputResponse(_message.Message):
    __slots__ = ("model_output_id", "created")
    MODEL_OUTPUT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    model_output_id: str
    created: bool
    def __init__(self, model_output_id: _Optional[str] = ..., created: _Optional[bool] = ...) -> None: ...

class ListDetectionsRequest(_message.Message):
    __slots__ = ("started_from", "started_to", "model_name", "min_score", "max_score", "tag_key", "tag_value", "deployment_id", "limit", "order", "page_token")
    STARTED_FROM_FIELD_NUMBER: _ClassVar[int]
    STARTED_TO_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    MAX_SCORE_FIELD_NUMBER: _ClassVar[int]
    TAG_KEY_FIELD_NUMBER: _ClassVar[int]
    TAG_VALUE_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    started_from: _timestamp_pb2.Timestamp
    started_to: _timestamp_pb2.Timestamp
    model_name: str
    min_score: float
    max_score: float
    tag_key: str
    tag_value: str
    deployment_id: str
    limit: int
    order: SortOrder
    page_token: str
    def __init__(self, started_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., model_name: _Optional[str] = ..., min_score: _Optional[float] = ..., max_score: _Optional[float] = ..., tag_key: _Optional[str] = ..., tag_value: _Optional[str] = ..., deployment_id: _Optional[str] = ..., limit: _Optional[int] = ..., order: _Optional[_Union[SortOrder, str]] = ..., page_token: _Optional[str] = ...) -> None: ...

class DetectionHit(_message.Message):
    __slots__ = ("detection", "recording_id", "model_output_id", "model_name", "recording_started_at")
    DETECTION_FIELD_NUMBER: _ClassVar[int]
    RECORDING_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_OUTPUT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    RECORDING_STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    detection: _types_pb2.Detection
    recording_id: str
    model_output_id: str
    model_name: str
    recording_started_at: _timestamp_pb2.Timestamp
    def __init__(self, detection: _Optional[_Union[_types_pb2.Detection, _Mapping]] = ..., recording_id: _Optional[str] = ..., model_output_id: _Optional[str] = ..., model_name: _Optional[str] = ..., recording_started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListDetectionsResponse(_message.Message):
    __slots__ = ("hits", "next_page_token")
    HITS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[DetectionHit]
    next_page_token: str
    def __init__(self, hits: _Optional[_Iterable[_Union[DetectionHit, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CountDetectionsRequest(_message.Message):
    __slots__ = ("started_from", "started_to", "bucket", "tag_key", "time_zone", "deployment_id", "model_name")
    STARTED_FROM_FIELD_NUMBER: _ClassVar[int]
    STARTED_TO_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    TAG_KEY_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    started_from: _timestamp_pb2.Timestamp
    started_to: _timestamp_pb2.Timestamp
    bucket: TimeBucket
    tag_key: str
    time_zone: str
    deployment_id: str
    model_name: str
    def __init__(self, started_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., bucket: _Optional[_Union[TimeBucket, str]] = ..., tag_key: _Optional[str] = ..., time_zone: _Optional[str] = ..., deployment_id: _Optional[str] = ..., model_name: _Optional[str] = ...) -> None: ...

class DetectionCount(_message.Message):
    __slots__ = ("bucket_start", "tag_value", "detections")
    BUCKET_START_FIELD_NUMBER: _ClassVar[int]
    TAG_VALUE_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    bucket_start: _timestamp_pb2.Timestamp
    tag_value: str
    detections: int
    def __init__(self, bucket_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tag_value: _Optional[str] = ..., detections: _Optional[int] = ...) -> None: ...

class CountDetectionsResponse(_message.Message):
    __slots__ = ("counts",)
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.RepeatedCompositeFieldContainer[DetectionCount]
    def __init__(self, counts: _Optional[_Iterable[_Union[DetectionCount, _Mapping]]] = ...) -> None: ...

class GetRetentionPlanRequest(_message.Message):
    __slots__ = ("file_management_json", "limit")
    FILE_MANAGEMENT_JSON_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    file_management_json: str
    limit: int
    def __init__(self, file_management_json: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class PlannedDeletion(_message.Message):
    __slots__ = ("recording", "reason", "due_at")
    RECORDING_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    recording: _types_pb2.Recording
    reason: str
    due_at: _timestamp_pb2.Timestamp
    def __init__(self, recording: _Optional[_Union[_types_pb2.Recording, _Mapping]] = ..., reason: _Optional[str] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetRetentionPlanResponse(_message.Message):
    __slots__ = ("enabled", "free_mb", "kept_as_best", "next")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    FREE_MB_FIELD_NUMBER: _ClassVar[int]
    KEPT_AS_BEST_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    free_mb: float
    kept_as_best: int
    next: _containers.RepeatedCompositeFieldContainer[PlannedDeletion]
    def __init__(self, enabled: _Optional[bool] = ..., free_mb: _Optional[float] = ..., kept_as_best: _Optional[int] = ..., next: _Optional[_Iterable[_Union[PlannedDeletion, _Mapping]]] = ...) -> None: ...

class StoreMessageRequest(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: _types_pb2.Message
    def __init__(self, message: _Optional[_Union[_types_pb2.Message, _Mapping]] = ...) -> None: ...

class StoreMessageResponse(_message.Message):
    __slots__ = ("message", "created")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    message: _types_pb2.Message
    created: bool
    def __init__(self, message: _Optional[_Union[_types_pb2.Message, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class GetUnsentMessagesRequest(_message.Message):
    __slots__ = ("limit", "order", "after_id")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    limit: int
    order: SortOrder
    after_id: str
    def __init__(self, limit: _Optional[int] = ..., order: _Optional[_Union[SortOrder, str]] = ..., after_id: _Optional[str] = ...) -> None: ...

class GetUnsentMessagesResponse(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[_types_pb2.Message]
    def __init__(self, messages: _Optional[_Iterable[_Union[_types_pb2.Message, _Mapping]]] = ...) -> None: ...

class StoreResponseRequest(_message.Message):
    __slots__ = ("response", "outcome")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    response: _types_pb2.Response
    outcome: TryOutcome
    def __init__(self, response: _Optional[_Union[_types_pb2.Response, _Mapping]] = ..., outcome: _Optional[_Union[TryOutcome, _Mapping]] = ...) -> None: ...

class StoreResponsesRequest(_message.Message):
    __slots__ = ("responses",)
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[StoreResponseRequest]
    def __init__(self, responses: _Optional[_Iterable[_Union[StoreResponseRequest, _Mapping]]] = ...) -> None: ...

class StoreResponsesResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TryOutcome(_message.Message):
    __slots__ = ("refused", "retry_in_s", "dead_after_refusals")
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    RETRY_IN_S_FIELD_NUMBER: _ClassVar[int]
    DEAD_AFTER_REFUSALS_FIELD_NUMBER: _ClassVar[int]
    refused: bool
    retry_in_s: float
    dead_after_refusals: int
    def __init__(self, refused: _Optional[bool] = ..., retry_in_s: _Optional[float] = ..., dead_after_refusals: _Optional[int] = ...) -> None: ...

class StoreResponseResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListResponsesRequest(_message.Message):
    __slots__ = ("message_id", "status", "limit")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    status: _types_pb2.ResponseStatus
    limit: int
    def __init__(self, message_id: _Optional[str] = ..., status: _Optional[_Union[_types_pb2.ResponseStatus, str]] = ..., limit: _Optional[int] = ...) -> None: ...

class ListResponsesResponse(_message.Message):
    __slots__ = ("responses",)
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[_types_pb2.Response]
    def __init__(self, responses: _Optional[_Iterable[_Union[_types_pb2.Response, _Mapping]]] = ...) -> None: ...

class CountMessagesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CountMessagesResponse(_message.Message):
    __slots__ = ("counts",)
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    counts: _types_pb2.OutboxCounts
    def __init__(self, counts: _Optional[_Union[_types_pb2.OutboxCounts, _Mapping]] = ...) -> None: ...

class ListMessagesRequest(_message.Message):
    __slots__ = ("state", "limit", "order")
    STATE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    state: _types_pb2.MessageState
    limit: int
    order: SortOrder
    def __init__(self, state: _Optional[_Union[_types_pb2.MessageState, str]] = ..., limit: _Optional[int] = ..., order: _Optional[_Union[SortOrder, str]] = ...) -> None: ...

class ListMessagesResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_types_pb2.MessageEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[_types_pb2.MessageEntry, _Mapping]]] = ...) -> None: ...

class RetryMessagesRequest(_message.Message):
    __slots__ = ("message_ids", "all_dead")
    MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    ALL_DEAD_FIELD_NUMBER: _ClassVar[int]
    message_ids: _containers.RepeatedScalarFieldContainer[str]
    all_dead: bool
    def __init__(self, message_ids: _Optional[_Iterable[str]] = ..., all_dead: _Optional[bool] = ...) -> None: ...

class RetryMessagesResponse(_message.Message):
    __slots__ = ("message_ids",)
    MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    message_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, message_ids: _Optional[_Iterable[str]] = ...) -> None: ...
