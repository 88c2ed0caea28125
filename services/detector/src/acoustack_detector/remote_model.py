"""A model in another process or language, reached over the `Model` contract.

The detector treats it exactly like the bundled model: ``run(recording) -> ModelOutput``. By default
it names the recording (both sides mount the recordings volume); with ``send_audio`` it streams the
file's samples instead, for a model server that cannot see the volume.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

from acoustack import convert, schema
from acoustack.clients import GrpcClient, RetryPolicy
from acoustack.errors import InvalidArgumentError, UnavailableError
from acoustack.v1 import model_pb2, model_pb2_grpc
from acoustack.v1 import types_pb2 as pb

CHUNK_BYTES = 1024 * 1024


def _wav_header(path: Path) -> tuple[int, int]:
    """Rate and channels, checked before a stream starts (an error inside one is unreadable)."""
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise InvalidArgumentError(f"{path}: only 16-bit PCM can be streamed")
            return wav.getframerate(), wav.getnchannels()
    except (OSError, EOFError, RuntimeError, wave.Error) as exc:  # wave raises all four
        raise InvalidArgumentError(f"{path}: not a readable WAV file ({exc})") from None


def _stream_wav(path: Path, recording: schema.Recording) -> Iterator[model_pb2.DetectStreamRequest]:
    rate, channels = _wav_header(path)
    yield model_pb2.DetectStreamRequest(
        header=model_pb2.AudioHeader(
            samplerate_hz=rate,
            channels=channels,
            time_expansion=recording.time_expansion,
            recording_id=str(recording.id),
        )
    )
    with wave.open(str(path), "rb") as wav:
        frames_per_chunk = max(1, CHUNK_BYTES // (2 * channels))
        while data := wav.readframes(frames_per_chunk):
            yield model_pb2.DetectStreamRequest(pcm_s16le_chunk=data)


class RemoteModel:
    def __init__(
        self,
        target: str,
        *,
        send_audio: bool = False,
        retry: RetryPolicy | None = None,
        call_timeout_s: float = 120.0,
    ) -> None:
        self.target = target
        self.send_audio = send_audio
        self._client = GrpcClient(target, retry=retry, call_timeout_s=call_timeout_s)
        self._stub = model_pb2_grpc.ModelStub(self._client.channel)
        self._info: model_pb2.InfoResponse | None = None

    def info(self) -> model_pb2.InfoResponse:
        if self._info is None:
            self._info = self._client.call(self._stub.Info, model_pb2.InfoRequest(), name="Info")
        return self._info

    @property
    def name(self) -> str:
        return self.info().name

    @property
    def version(self) -> str:
        return self.info().version

    def run(self, recording: schema.Recording) -> schema.ModelOutput:
        if self.send_audio:
            path = Path(recording.path)
            _wav_header(path)
            reply = self._client.call(
                self._stub.DetectStream, lambda: _stream_wav(path, recording), name="DetectStream"
            )
        else:
            request = model_pb2.DetectRequest(recording=convert.recording_to_proto(recording))
            reply = self._client.call(self._stub.Detect, request, name="Detect")
        return self._to_schema(reply.model_output, recording)

    def _to_schema(self, output: pb.ModelOutput, recording: schema.Recording) -> schema.ModelOutput:
        # The server may leave the bookkeeping to us; the detections are its own.
        output.recording_id = str(recording.id)
        output.model_name = output.model_name or self.name
        output.model_version = output.model_version or self.version
        output.ClearField("id")
        return convert.model_output_from_proto(output)

    def check(self) -> None:
        """The server answers Info: it is up and speaks the contract."""
        try:
            info = self.info()
        except UnavailableError as exc:
            raise UnavailableError(f"model server {self.target}: {exc}") from None
        if not info.name:
            raise InvalidArgumentError(f"model server {self.target} did not say its name in Info")

    def close(self) -> None:
        self._client.close()
