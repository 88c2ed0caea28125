"""A model in another process or language, reached over the `Model` contract.

The detector treats it exactly like the bundled model: ``run(recording) -> ModelOutput``. By default
it names the recording (both sides mount the recordings volume); with ``send_audio`` it streams the
file's samples instead, for a model server that cannot see the volume.

Every way a call can go wrong ends as one ``ModelServerError`` naming the server, which says whether
trying again later can help (``retry``): the status codes' outcomes are in model.proto, and
``OUTCOMES`` below is that table. A malformed output is refused naming the field's place.
"""

from __future__ import annotations

import random
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
from pydantic import ValidationError

from acoustack import convert, schema
from acoustack.clients import GrpcClient
from acoustack.errors import AcoustackError, InvalidArgumentError, NotFoundError, validation_message
from acoustack.v1 import model_pb2, model_pb2_grpc
from acoustack.v1 import types_pb2 as pb
from acoustack_detector.output_check import output_problems, summary
from acoustack_detector.wav import WavFile, WavFormat

CHUNK_BYTES = 1024 * 1024
CALL_TIMEOUT_S = 120.0  # one recording's Detect (model.proto, LIMITS)
INFO_TIMEOUT_S = 10.0

Code = grpc.StatusCode
SEND_AUDIO_HELP = (
    "mount the recordings volume in the model server at the same path, or set "
    "detection.model_send_audio true to stream the audio"
)
# What each status code does to the recording: (retry, what the user can do). model.proto's
# STATUS CODES section says the same; a code not listed is retried.
OUTCOMES: dict[grpc.StatusCode, tuple[bool, str]] = {
    Code.INVALID_ARGUMENT: (False, "the model cannot use this recording"),
    Code.OUT_OF_RANGE: (False, "the model cannot use this recording"),
    Code.NOT_FOUND: (False, SEND_AUDIO_HELP),
    Code.PERMISSION_DENIED: (False, SEND_AUDIO_HELP),
    Code.RESOURCE_EXHAUSTED: (False, "the recording is larger than the server accepts"),
    Code.UNIMPLEMENTED: (False, "the server does not implement this method of the Model contract"),
    Code.UNAUTHENTICATED: (False, "the server refuses the detector"),
    Code.ALREADY_EXISTS: (False, ""),
    Code.DATA_LOSS: (False, ""),
    Code.UNAVAILABLE: (True, "is the model server running?"),
    Code.DEADLINE_EXCEEDED: (True, f"the server must answer within {CALL_TIMEOUT_S:g} s"),
}


class ModelServerError(AcoustackError):
    """A call to a model server failed, or its answer broke the contract. ``retry``: trying the
    recording again later may work (the server is down, slow or not ready)."""

    def __init__(
        self, target: str, message: str, *, retry: bool, code: grpc.StatusCode | None = None,
        help: str = "",
    ) -> None:  # fmt: skip
        super().__init__(f"model server {target}: {message}", help=help)
        self.target = target
        self.retry = retry
        self.code = code


@dataclass(frozen=True)
class ModelRetryPolicy:
    """How often a recording is tried again after a retryable model failure, before it is marked
    failed: ``attempts`` in all, the n-th retry after about ``first_delay_s`` × 2**(n-1) (full
    jitter, at most ``max_delay_s``)."""

    attempts: int = 8
    first_delay_s: float = 5.0
    max_delay_s: float = 300.0

    def delay_s(self, retries_so_far: int) -> float:
        ceiling = min(self.first_delay_s * 2**retries_so_far, self.max_delay_s)
        return random.uniform(ceiling / 2, ceiling)


def call_error(target: str, method: str, error: grpc.RpcError) -> ModelServerError:
    code = error.code() if hasattr(error, "code") else Code.UNKNOWN
    details = (error.details() if hasattr(error, "details") else None) or str(error)
    retry, help = OUTCOMES.get(code, (True, ""))
    return ModelServerError(
        target, f"{method}: {code.name}: {details}", retry=retry, code=code, help=help
    )


def _wav_format(path: Path) -> WavFormat:
    """The file's format, checked before a stream starts (an error inside one is unreadable)."""
    try:
        with WavFile.open(path) as wav:  # InvalidArgumentError naming the file and the fault
            return wav.format
    except NotFoundError as exc:  # the recording's own file: it fails, the task is not dropped
        raise InvalidArgumentError(str(exc)) from None


def _is_pcm16(fmt: WavFormat) -> bool:
    return fmt.sample_kind == "pcm" and fmt.bits_per_sample == 16


def _stream_wav(path: Path, recording: schema.Recording) -> Iterator[model_pb2.DetectStreamRequest]:
    """The header, then 1 MiB chunks of 16-bit PCM: a 16-bit file's frames as they are; any
    other file (24- or 32-bit, float) as its first channel, converted (the contract's audio is
    16-bit)."""
    fmt = _wav_format(path)
    channels = fmt.channels if _is_pcm16(fmt) else 1
    yield model_pb2.DetectStreamRequest(
        header=model_pb2.AudioHeader(
            samplerate_hz=fmt.samplerate_hz,
            channels=channels,
            time_expansion=recording.time_expansion,
            recording_id=str(recording.id),
        )
    )
    frames_per_chunk = max(1, CHUNK_BYTES // (2 * channels))
    if _is_pcm16(fmt):
        with wave.open(str(path), "rb") as wav:
            while data := wav.readframes(frames_per_chunk):
                yield model_pb2.DetectStreamRequest(pcm_s16le_chunk=data)
        return
    with WavFile.open(path) as wav:
        for start in range(0, fmt.frames, frames_per_chunk):
            samples = wav.read(start, min(fmt.frames, start + frames_per_chunk))
            pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2")
            yield model_pb2.DetectStreamRequest(pcm_s16le_chunk=pcm.tobytes())


class RemoteModel:
    def __init__(
        self,
        target: str,
        *,
        send_audio: bool = False,
        call_timeout_s: float = CALL_TIMEOUT_S,
        info_timeout_s: float = INFO_TIMEOUT_S,
        output_name: str = "",
    ) -> None:
        self.target = target
        # The program's name for this model (an extra model's `name`): its outputs carry it,
        # whatever the server calls itself, so file management waits for the name it was given.
        self.output_name = output_name
        self.send_audio = send_audio
        self.call_timeout_s = call_timeout_s
        self.info_timeout_s = info_timeout_s
        self._client = GrpcClient(target, call_timeout_s=call_timeout_s)
        self._stub = model_pb2_grpc.ModelStub(self._client.channel)
        self._info: model_pb2.InfoResponse | None = None

    def _call(self, method: str, request, timeout_s: float):
        try:
            return getattr(self._stub, method)(request, timeout=timeout_s)
        except grpc.RpcError as exc:
            raise call_error(self.target, method, exc) from None

    def info(self) -> model_pb2.InfoResponse:
        if self._info is None:
            info = self._call("Info", model_pb2.InfoRequest(), self.info_timeout_s)
            problems = [p.replace("model_name", "name") for p in _info_problems(info)]
            if problems:
                raise ModelServerError(
                    self.target, "Info: " + summary(problems), retry=False,
                    help="InfoResponse.name is required (model.proto)",
                )  # fmt: skip
            self._info = info
        return self._info

    @property
    def name(self) -> str:
        return self.output_name or self.info().name

    @property
    def version(self) -> str:
        return self.info().version

    def run(self, recording: schema.Recording) -> schema.ModelOutput:
        """The server's output for ``recording``; any failure is a ModelServerError (or, for a
        file that cannot be streamed, InvalidArgumentError naming it, before anything is sent)."""
        info = self.info()
        if self.send_audio:
            path = Path(recording.path)
            _wav_format(path)
            method, request = "DetectStream", _stream_wav(path, recording)
        else:
            method = "Detect"
            request = model_pb2.DetectRequest(recording=convert.recording_to_proto(recording))
        reply = self._call(method, request, self.call_timeout_s)
        if not reply.HasField("model_output"):
            raise ModelServerError(
                self.target, f"{method}: model_output: required, and not set", retry=False
            )
        return self.to_schema(reply.model_output, recording, info, method)

    def to_schema(
        self,
        output: pb.ModelOutput,
        recording: schema.Recording,
        info: model_pb2.InfoResponse,
        method: str = "Detect",
    ) -> schema.ModelOutput:
        """The server's output checked against the contract, with the fields the detector owns
        filled in (model.proto: ModelOutput)."""
        problems = output_problems(output, recording.duration_s)
        if problems:
            raise ModelServerError(
                self.target, f"{method}: malformed output: {summary(problems)}", retry=False,
                help="see proto/acoustack/v1/types.proto, ModelOutput",
            )  # fmt: skip
        output.recording_id = str(recording.id)
        output.model_name = self.output_name or output.model_name or info.name
        output.model_version = output.model_version or info.version
        output.ClearField("id")
        output.ClearField("created_at")
        try:
            return convert.model_output_from_proto(output)
        except (ValidationError, AcoustackError) as exc:  # what output_problems did not foresee
            message = validation_message(exc, "") if isinstance(exc, ValidationError) else exc
            raise ModelServerError(
                self.target, f"{method}: malformed output: {message}", retry=False
            ) from None

    def check(self) -> None:
        """The server answers Info: it is up and speaks the contract."""
        self.info()

    def close(self) -> None:
        self._client.close()


def _info_problems(info: model_pb2.InfoResponse) -> list[str]:
    problems = output_problems(pb.ModelOutput(model_name=info.name, model_version=info.version))
    if not info.name:
        problems.insert(0, "name: required, and empty")
    return problems
