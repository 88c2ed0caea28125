from acoustack.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InfoResponse(_message.Message):
    __slots__ = ("name", "version", "samplerate_hz", "classes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SAMPLERATE_HZ_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    samplerate_hz: int
    classes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., samplerate_hz: _Optional[int] = ..., classes: _Optional[_Iterable[str]] = ...) -> None: ...

class AudioHeader(_message.Message):
    __slots__ = ("samplerate_hz", "channels", "time_expansion", "recording_id")
    SAMPLERATE_HZ_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    TIME_EXPANSION_FIELD_NUMBER: _ClassVar[int]
    RECORDING_ID_FIELD_NUMBER: _ClassVar[int]
    samplerate_hz: int
    channels: int
    time_expansion: float
    recording_id: str
    def __init__(self, samplerate_hz: _Optional[int] = ..., channels: _Optional[int] = ..., time_expansion: _Optional[float] = ..., recording_id: _Optional[str] = ...) -> None: ...

class AudioData(_message.Message):
    __slots__ = ("header", "pcm_s16le")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    PCM_S16LE_FIELD_NUMBER: _ClassVar[int]
    header: AudioHeader
    pcm_s16le: bytes
    def __init__(self, header: _Optional[_Union[AudioHeader, _Mapping]] = ..., pcm_s16le: _Optional[bytes] = ...) -> None: ...

class DetectRequest(_message.Message):
    __slots__ = ("audio", "recording")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    RECORDING_FIELD_NUMBER: _ClassVar[int]
    audio: AudioData
    recording: _types_pb2.Recording
    def __init__(self, audio: _Optional[_Union[AudioData, _Mapping]] = ..., recording: _Optional[_Union[_types_pb2.Recording, _Mapping]] = ...) -> None: ...

class DetectResponse(_message.Message):
    __slots__ = ("model_output",)
    MODEL_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    model_output: _types_pb2.ModelOutput
    def __init__(self, model_output: _Optional[_Union[_types_pb2.ModelOutput, _Mapping]] = ...) -> None: ...

class DetectStreamRequest(_message.Message):
    __slots__ = ("header", "pcm_s16le_chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    PCM_S16LE_CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: AudioHeader
    pcm_s16le_chunk: bytes
    def __init__(self, header: _Optional[_Union[AudioHeader, _Mapping]] = ..., pcm_s16le_chunk: _Optional[bytes] = ...) -> None: ...

class DetectStreamResponse(_message.Message):
    __slots__ = ("model_output",)
    MODEL_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    model_output: _types_pb2.ModelOutput
    def __init__(self, model_output: _Optional[_Union[_types_pb2.ModelOutput, _Mapping]] = ...) -> None: ...
