"""The detector's gRPC face: it serves its model through the `Model` contract.

A client sends audio inline (small), streams it in chunks (large), or names a recording on the shared
recordings volume. Paths outside that volume are refused, so the server never reads arbitrary files.
Audio beyond the configured limits (bytes, or seconds of audio) gets RESOURCE_EXHAUSTED with a
message that says the limit. Header values are checked with the limits a recording has.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc

from acoustack import convert, limits, schema
from acoustack.errors import (
    InvalidArgumentError,
    PermissionDeniedError,
    ResourceExhaustedError,
    quote,
)
from acoustack.grpc_server import rpc_errors
from acoustack.v1 import model_pb2, model_pb2_grpc, types_pb2
from acoustack_detector.audio_model import AudioModel, pcm_s16le_to_float
from acoustack_detector.wav import WavFile

log = logging.getLogger(__name__)


class ModelServicer(model_pb2_grpc.ModelServicer):
    def __init__(
        self,
        model: AudioModel,
        *,
        recordings_root: Path | None,
        max_audio_bytes: int = 256 * 1024 * 1024,
        max_audio_s: float = limits.LONGEST_RECORDING_S,
    ) -> None:
        self.model = model
        self.recordings_root = recordings_root.resolve() if recordings_root else None
        self.max_audio_bytes = max_audio_bytes
        # The work a request asks for grows with its audio's duration, not its size: a few
        # samples said to be at 1 Hz are a day of audio to resample. Longer audio is refused.
        self.max_audio_s = max_audio_s

    def _output(self, detections, recording_id: str) -> types_pb2.ModelOutput:
        output = types_pb2.ModelOutput(
            recording_id=recording_id,
            model_name=self.model.name,
            model_version=self.model.version,
        )
        output.detections.extend(convert.detection_to_proto(d) for d in detections)
        return output

    def _check_duration(self, frames: int, samplerate_hz: float, time_expansion: float, what: str):
        duration_s = frames / (samplerate_hz * time_expansion)
        if duration_s > self.max_audio_s:
            raise ResourceExhaustedError(
                f"{what}: {duration_s:.6g} s of audio ({frames} frames at {samplerate_hz:g} Hz, "
                f"time expansion {time_expansion:g}) is more than the limit of "
                f"{self.max_audio_s:g} s; split the recording"
            )

    def _from_audio(
        self, header: model_pb2.AudioHeader, pcm: bytes, path: str
    ) -> types_pb2.ModelOutput:
        if header.samplerate_hz == 0:
            raise InvalidArgumentError(f"{path}.header.samplerate_hz: required (Hz)")
        if header.channels == 0:
            raise InvalidArgumentError(f"{path}.header.channels: required")
        rate = schema.check_samplerate(header.samplerate_hz, f"{path}.header.samplerate_hz")
        channels = schema.check_channels(header.channels, f"{path}.header.channels")
        expansion = _time_expansion(header.time_expansion, f"{path}.header.time_expansion")
        if len(pcm) < 2 * channels:
            raise InvalidArgumentError(f"{path}.pcm_s16le: no samples")
        if len(pcm) % 2:
            raise InvalidArgumentError(
                f"{path}.pcm_s16le: {len(pcm)} bytes is not a whole number of 16-bit samples"
            )
        self._check_duration(len(pcm) // (2 * channels), rate, expansion, path)
        samples = pcm_s16le_to_float(pcm, channels)
        detections = self.model.detect_audio(samples, rate, expansion)
        return self._output(detections, header.recording_id)

    def _from_recording(self, recording: types_pb2.Recording) -> types_pb2.ModelOutput:
        given = schema.check_path(recording.path, "recording.path")
        path = Path(given).resolve()
        if self.recordings_root is None or not path.is_relative_to(self.recordings_root):
            raise PermissionDeniedError(
                f"recording.path: {quote(given)} is outside the recordings volume "
                f"({self.recordings_root or 'none configured'}); send the audio instead"
            )
        expansion = _time_expansion(recording.time_expansion, "recording.time_expansion")
        with WavFile.open(path) as wav:
            fmt = wav.format
        self._check_duration(fmt.frames, fmt.samplerate_hz, expansion, "recording")
        return self._output(self.model.detect_file(path, expansion), recording.id)

    @rpc_errors
    def Info(self, request, context):
        return model_pb2.InfoResponse(
            name=self.model.name,
            version=self.model.version,
            samplerate_hz=self.model.samplerate_hz,
            classes=list(self.model.classes),
        )

    @rpc_errors
    def Detect(self, request, context):
        if request.HasField("audio"):
            audio = request.audio
            output = self._from_audio(audio.header, audio.pcm_s16le, "audio")
        elif request.HasField("recording"):
            output = self._from_recording(request.recording)
        else:
            raise InvalidArgumentError("source: give audio or a recording")
        return model_pb2.DetectResponse(model_output=output)

    @rpc_errors
    def DetectStream(self, request_iterator: Iterator[model_pb2.DetectStreamRequest], context):
        header = None
        chunks: list[bytes] = []
        size = 0
        for part in request_iterator:
            if part.HasField("header"):
                if header is not None:
                    raise InvalidArgumentError("header: sent twice")
                header = part.header
                continue
            if header is None:
                raise InvalidArgumentError("header: the stream must start with one")
            size += len(part.pcm_s16le_chunk)
            if size > self.max_audio_bytes:
                raise ResourceExhaustedError(
                    f"audio: more than the limit of {self.max_audio_bytes} bytes "
                    f"({self.max_audio_bytes // (1024 * 1024)} MiB); split the recording"
                )
            chunks.append(part.pcm_s16le_chunk)
        if header is None:
            raise InvalidArgumentError("header: the stream must start with one")
        output = self._from_audio(header, b"".join(chunks), "audio")
        return model_pb2.DetectStreamResponse(model_output=output)


def _time_expansion(value: float, field: str) -> float:
    """0 (unset) is real-time audio; otherwise a factor as a recording may have."""
    return 1.0 if value == 0 else schema.check_time_expansion(value, field)


def register(servicer: ModelServicer) -> Callable[[grpc.Server], str]:
    def add(server: grpc.Server) -> str:
        model_pb2_grpc.add_ModelServicer_to_server(servicer, server)
        return model_pb2.DESCRIPTOR.services_by_name["Model"].full_name

    return add
