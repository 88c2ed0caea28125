"""The detector's gRPC face: it serves its model through the `Model` contract.

A client sends audio inline (small), streams it in chunks (large), or names a recording on the shared
recordings volume. Paths outside that volume are refused, so the server never reads arbitrary files.
Audio beyond the configured limit gets RESOURCE_EXHAUSTED with a message that says the limit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc

from acoustack import convert
from acoustack.errors import AcoustackError, InvalidArgumentError
from acoustack.v1 import model_pb2, model_pb2_grpc, types_pb2
from acoustack_detector.audio_model import AudioModel, pcm_s16le_to_float

log = logging.getLogger(__name__)


class ModelServicer(model_pb2_grpc.ModelServicer):
    def __init__(
        self,
        model: AudioModel,
        *,
        recordings_root: Path | None,
        max_audio_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self.model = model
        self.recordings_root = recordings_root.resolve() if recordings_root else None
        self.max_audio_bytes = max_audio_bytes

    def _output(self, detections, recording_id: str) -> types_pb2.ModelOutput:
        output = types_pb2.ModelOutput(
            recording_id=recording_id,
            model_name=self.model.name,
            model_version=self.model.version,
        )
        output.detections.extend(convert.detection_to_proto(d) for d in detections)
        return output

    def _from_audio(self, header: model_pb2.AudioHeader, pcm: bytes) -> types_pb2.ModelOutput:
        if header.samplerate_hz <= 0:
            raise InvalidArgumentError("audio.header.samplerate_hz: required (Hz)")
        if header.channels <= 0:
            raise InvalidArgumentError("audio.header.channels: required")
        if len(pcm) < 2 * header.channels:
            raise InvalidArgumentError("audio.pcm_s16le: no samples")
        samples = pcm_s16le_to_float(pcm, header.channels)
        detections = self.model.detect_audio(
            samples, header.samplerate_hz, header.time_expansion or 1.0
        )
        return self._output(detections, header.recording_id)

    def _guarded(self, context, work: Callable[[], types_pb2.ModelOutput]) -> types_pb2.ModelOutput:
        try:
            return work()
        except AcoustackError as exc:
            context.abort(exc.grpc_code, str(exc))
        except Exception:
            log.exception("detection failed")
            context.abort(grpc.StatusCode.INTERNAL, "detection failed (see the detector log)")

    def Info(self, request, context):
        return model_pb2.InfoResponse(
            name=self.model.name,
            version=self.model.version,
            samplerate_hz=self.model.samplerate_hz,
            classes=list(self.model.classes),
        )

    def Detect(self, request, context):
        if request.HasField("audio"):
            audio = request.audio
            output = self._guarded(context, lambda: self._from_audio(audio.header, audio.pcm_s16le))
            return model_pb2.DetectResponse(model_output=output)
        if request.HasField("recording"):
            recording = request.recording
            path = Path(recording.path).resolve()
            if self.recordings_root is None or not path.is_relative_to(self.recordings_root):
                context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"recording.path: {recording.path} is outside the recordings volume "
                    f"({self.recordings_root or 'none configured'}); send the audio instead",
                )
            output = self._guarded(
                context,
                lambda: self._output(
                    self.model.detect_file(path, recording.time_expansion or 1.0), recording.id
                ),
            )
            return model_pb2.DetectResponse(model_output=output)
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "source: give audio or a recording")

    def DetectStream(self, request_iterator: Iterator[model_pb2.DetectStreamRequest], context):
        header = None
        chunks: list[bytes] = []
        size = 0
        for part in request_iterator:
            if part.HasField("header"):
                if header is not None:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, "header: sent twice")
                header = part.header
                continue
            if header is None:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "header: the stream must start with one"
                )
            size += len(part.pcm_s16le_chunk)
            if size > self.max_audio_bytes:
                context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"audio: more than the limit of {self.max_audio_bytes} bytes "
                    f"({self.max_audio_bytes // (1024 * 1024)} MiB); split the recording",
                )
            chunks.append(part.pcm_s16le_chunk)
        if header is None:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "header: the stream must start with one"
            )
        output = self._guarded(context, lambda: self._from_audio(header, b"".join(chunks)))
        return model_pb2.DetectStreamResponse(model_output=output)


def register(servicer: ModelServicer) -> Callable[[grpc.Server], str]:
    def add(server: grpc.Server) -> str:
        model_pb2_grpc.add_ModelServicer_to_server(servicer, server)
        return model_pb2.DESCRIPTOR.services_by_name["Model"].full_name

    return add
