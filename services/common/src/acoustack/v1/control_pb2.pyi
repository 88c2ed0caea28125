from acoustack.v1 import check_pb2 as _check_pb2
from acoustack.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ControlStartDeploymentRequest(_message.Message):
    __slots__ = ("name", "latitude", "longitude", "skip_checks")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LATITUDE_FIELD_NUMBER: _ClassVar[int]
    LONGITUDE_FIELD_NUMBER: _ClassVar[int]
    SKIP_CHECKS_FIELD_NUMBER: _ClassVar[int]
    name: str
    latitude: float
    longitude: float
    skip_checks: bool
    def __init__(self, name: _Optional[str] = ..., latitude: _Optional[float] = ..., longitude: _Optional[float] = ..., skip_checks: _Optional[bool] = ...) -> None: ...

class ControlStartDeploymentResponse(_message.Message):
    __slots__ = ("deployment", "checks")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    deployment: _types_pb2.Deployment
    checks: _containers.RepeatedCompositeFieldContainer[_check_pb2.CheckResult]
    def __init__(self, deployment: _Optional[_Union[_types_pb2.Deployment, _Mapping]] = ..., checks: _Optional[_Iterable[_Union[_check_pb2.CheckResult, _Mapping]]] = ...) -> None: ...

class ControlStopDeploymentRequest(_message.Message):
    __slots__ = ("flush_timeout_s",)
    FLUSH_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    flush_timeout_s: float
    def __init__(self, flush_timeout_s: _Optional[float] = ...) -> None: ...

class ControlStopDeploymentResponse(_message.Message):
    __slots__ = ("deployment", "flush_steps", "flush_left")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    FLUSH_STEPS_FIELD_NUMBER: _ClassVar[int]
    FLUSH_LEFT_FIELD_NUMBER: _ClassVar[int]
    deployment: _types_pb2.Deployment
    flush_steps: _containers.RepeatedScalarFieldContainer[str]
    flush_left: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, deployment: _Optional[_Union[_types_pb2.Deployment, _Mapping]] = ..., flush_steps: _Optional[_Iterable[str]] = ..., flush_left: _Optional[_Iterable[str]] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServiceStatus(_message.Message):
    __slots__ = ("name", "target", "health")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    name: str
    target: str
    health: str
    def __init__(self, name: _Optional[str] = ..., target: _Optional[str] = ..., health: _Optional[str] = ...) -> None: ...

class QueueStatus(_message.Message):
    __slots__ = ("name", "waiting", "workers", "expected_workers")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_WORKERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    waiting: int
    workers: int
    expected_workers: int
    def __init__(self, name: _Optional[str] = ..., waiting: _Optional[int] = ..., workers: _Optional[int] = ..., expected_workers: _Optional[int] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("program", "deployment", "services", "queues", "last_recording", "last_model_output", "unsent_messages", "free_disk_gb", "last_message_sent", "device_status", "device_id", "outbox", "retention")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    LAST_RECORDING_FIELD_NUMBER: _ClassVar[int]
    LAST_MODEL_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    UNSENT_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    FREE_DISK_GB_FIELD_NUMBER: _ClassVar[int]
    LAST_MESSAGE_SENT_FIELD_NUMBER: _ClassVar[int]
    DEVICE_STATUS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    OUTBOX_FIELD_NUMBER: _ClassVar[int]
    RETENTION_FIELD_NUMBER: _ClassVar[int]
    program: str
    deployment: _types_pb2.Deployment
    services: _containers.RepeatedCompositeFieldContainer[ServiceStatus]
    queues: _containers.RepeatedCompositeFieldContainer[QueueStatus]
    last_recording: _types_pb2.Recording
    last_model_output: _types_pb2.ModelOutput
    unsent_messages: int
    free_disk_gb: float
    last_message_sent: _types_pb2.Response
    device_status: str
    device_id: str
    outbox: _types_pb2.OutboxCounts
    retention: _types_pb2.RetentionState
    def __init__(self, program: _Optional[str] = ..., deployment: _Optional[_Union[_types_pb2.Deployment, _Mapping]] = ..., services: _Optional[_Iterable[_Union[ServiceStatus, _Mapping]]] = ..., queues: _Optional[_Iterable[_Union[QueueStatus, _Mapping]]] = ..., last_recording: _Optional[_Union[_types_pb2.Recording, _Mapping]] = ..., last_model_output: _Optional[_Union[_types_pb2.ModelOutput, _Mapping]] = ..., unsent_messages: _Optional[int] = ..., free_disk_gb: _Optional[float] = ..., last_message_sent: _Optional[_Union[_types_pb2.Response, _Mapping]] = ..., device_status: _Optional[str] = ..., device_id: _Optional[str] = ..., outbox: _Optional[_Union[_types_pb2.OutboxCounts, _Mapping]] = ..., retention: _Optional[_Union[_types_pb2.RetentionState, _Mapping]] = ...) -> None: ...

class RunChecksRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RunChecksResponse(_message.Message):
    __slots__ = ("checks",)
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    checks: _containers.RepeatedCompositeFieldContainer[_check_pb2.CheckResult]
    def __init__(self, checks: _Optional[_Iterable[_Union[_check_pb2.CheckResult, _Mapping]]] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TaskInfo(_message.Message):
    __slots__ = ("name", "task", "queue", "interval_s", "offset_s")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    OFFSET_S_FIELD_NUMBER: _ClassVar[int]
    name: str
    task: str
    queue: str
    interval_s: float
    offset_s: float
    def __init__(self, name: _Optional[str] = ..., task: _Optional[str] = ..., queue: _Optional[str] = ..., interval_s: _Optional[float] = ..., offset_s: _Optional[float] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks",)
    TASKS_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[TaskInfo]
    def __init__(self, tasks: _Optional[_Iterable[_Union[TaskInfo, _Mapping]]] = ...) -> None: ...

class RunTaskRequest(_message.Message):
    __slots__ = ("name", "profile", "profile_timeout_s")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    PROFILE_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    name: str
    profile: bool
    profile_timeout_s: float
    def __init__(self, name: _Optional[str] = ..., profile: _Optional[bool] = ..., profile_timeout_s: _Optional[float] = ...) -> None: ...

class RunTaskResponse(_message.Message):
    __slots__ = ("task_id", "queue", "profile_json")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    PROFILE_JSON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    queue: str
    profile_json: str
    def __init__(self, task_id: _Optional[str] = ..., queue: _Optional[str] = ..., profile_json: _Optional[str] = ...) -> None: ...

class GetConfigRequest(_message.Message):
    __slots__ = ("field",)
    FIELD_FIELD_NUMBER: _ClassVar[int]
    field: str
    def __init__(self, field: _Optional[str] = ...) -> None: ...

class GetConfigResponse(_message.Message):
    __slots__ = ("value_json", "schema_json")
    VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    value_json: str
    schema_json: str
    def __init__(self, value_json: _Optional[str] = ..., schema_json: _Optional[str] = ...) -> None: ...

class ConfigChange(_message.Message):
    __slots__ = ("field", "value")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    field: str
    value: str
    def __init__(self, field: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class SetConfigRequest(_message.Message):
    __slots__ = ("field", "value", "changes")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    field: str
    value: str
    changes: _containers.RepeatedCompositeFieldContainer[ConfigChange]
    def __init__(self, field: _Optional[str] = ..., value: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[ConfigChange, _Mapping]]] = ...) -> None: ...

class SetConfigResponse(_message.Message):
    __slots__ = ("value_json",)
    VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    value_json: str
    def __init__(self, value_json: _Optional[str] = ...) -> None: ...

class GetOutboxRequest(_message.Message):
    __slots__ = ("dead_limit",)
    DEAD_LIMIT_FIELD_NUMBER: _ClassVar[int]
    dead_limit: int
    def __init__(self, dead_limit: _Optional[int] = ...) -> None: ...

class GetOutboxResponse(_message.Message):
    __slots__ = ("counts", "dead_letters")
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERS_FIELD_NUMBER: _ClassVar[int]
    counts: _types_pb2.OutboxCounts
    dead_letters: _containers.RepeatedCompositeFieldContainer[_types_pb2.MessageEntry]
    def __init__(self, counts: _Optional[_Union[_types_pb2.OutboxCounts, _Mapping]] = ..., dead_letters: _Optional[_Iterable[_Union[_types_pb2.MessageEntry, _Mapping]]] = ...) -> None: ...

class ControlRetryMessagesRequest(_message.Message):
    __slots__ = ("message_ids", "all_dead")
    MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    ALL_DEAD_FIELD_NUMBER: _ClassVar[int]
    message_ids: _containers.RepeatedScalarFieldContainer[str]
    all_dead: bool
    def __init__(self, message_ids: _Optional[_Iterable[str]] = ..., all_dead: _Optional[bool] = ...) -> None: ...

class ControlRetryMessagesResponse(_message.Message):
    __slots__ = ("message_ids",)
    MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    message_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, message_ids: _Optional[_Iterable[str]] = ...) -> None: ...
