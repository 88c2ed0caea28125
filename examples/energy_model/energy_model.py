"""An example custom model server: a simple band-energy detector speaking the `Model` contract.

It shows what a researcher writes to plug a model of their own into acoustack: a gRPC server that
implements `acoustack.v1.Model` (Info, Detect, DetectStream) plus the standard health service. It is
in Python here, but any language with gRPC will do; the detector calls it exactly as it calls the
bundled BatDetect2.

The detector: frames of the first channel, energy in a frequency band per frame, and an event
wherever the band stands a margin above its own median (the noise floor). Crude, fast, and different
enough from BatDetect2 to show that the pipeline does not care which model runs.

Run: python examples/energy_model/energy_model.py --port 50061 [--recordings-root /recordings]
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import wave
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from acoustack.v1 import model_pb2, model_pb2_grpc, types_pb2

log = logging.getLogger("energy_model")

NAME = "energy-band"
VERSION = "1.0"


@dataclass(frozen=True)
class EnergyBandDetector:
    low_freq_hz: float = 20_000.0
    high_freq_hz: float = 120_000.0
    margin_db: float = 12.0
    frame_s: float = 0.002

    def detect(self, samples: np.ndarray, samplerate_hz: int) -> list[types_pb2.Detection]:
        """``samples``: mono float32. Returns one event per run of loud frames."""
        frame = max(16, int(self.frame_s * samplerate_hz))
        count = len(samples) // frame
        if count < 2:
            return []
        frames = samples[: count * frame].reshape(count, frame)
        spectrum = np.abs(np.fft.rfft(frames * np.hanning(frame).astype(np.float32), axis=1)) ** 2
        freqs = np.fft.rfftfreq(frame, d=1.0 / samplerate_hz)
        band = (freqs >= self.low_freq_hz) & (freqs <= min(self.high_freq_hz, samplerate_hz / 2))
        if not band.any():
            return []
        energy_db = 10 * np.log10(spectrum[:, band].sum(axis=1) + 1e-12)
        excess = energy_db - np.median(energy_db)
        loud = excess > self.margin_db
        detections = []
        edges = np.flatnonzero(np.diff(np.concatenate(([0], loud.astype(np.int8), [0]))))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            score = float(min(1.0, excess[start:stop].max() / (3 * self.margin_db)))
            detections.append(
                types_pb2.Detection(
                    prediction_type=types_pb2.PREDICTION_TYPE_EVENT,
                    box=types_pb2.BoundingBox(
                        start_time_s=start * frame / samplerate_hz,
                        end_time_s=stop * frame / samplerate_hz,
                        low_freq_hz=self.low_freq_hz,
                        high_freq_hz=min(self.high_freq_hz, samplerate_hz / 2),
                    ),
                    detection_score=score,
                    tags=[
                        types_pb2.PredictedTag(
                            tag=types_pb2.Tag(key="event", value="band-energy"), confidence=score
                        )
                    ],
                )
            )
        return detections


def pcm_to_mono(pcm: bytes, channels: int) -> np.ndarray:
    samples = np.frombuffer(pcm, dtype="<i2")
    if channels > 1:
        samples = samples[: len(samples) // channels * channels].reshape(-1, channels)[:, 0]
    return samples.astype(np.float32) / 32768.0


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        return pcm_to_mono(wav.readframes(wav.getnframes()), wav.getnchannels()), wav.getframerate()


class EnergyModelServicer(model_pb2_grpc.ModelServicer):
    def __init__(self, detector: EnergyBandDetector, recordings_root: Path | None) -> None:
        self.detector = detector
        self.recordings_root = recordings_root.resolve() if recordings_root else None

    def _output(self, detections, recording_id: str) -> types_pb2.ModelOutput:
        return types_pb2.ModelOutput(
            recording_id=recording_id, model_name=NAME, model_version=VERSION, detections=detections
        )

    def Info(self, request, context):
        return model_pb2.InfoResponse(
            name=NAME, version=VERSION, samplerate_hz=0, classes=["band-energy"]
        )

    def Detect(self, request, context):
        if request.HasField("audio"):
            header = request.audio.header
            if header.samplerate_hz <= 0 or header.channels <= 0:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "audio.header: give samplerate_hz and channels",
                )
            samples = pcm_to_mono(request.audio.pcm_s16le, header.channels)
            rate = int(header.samplerate_hz * (header.time_expansion or 1.0))
            return model_pb2.DetectResponse(
                model_output=self._output(self.detector.detect(samples, rate), header.recording_id)
            )
        if request.HasField("recording"):
            recording = request.recording
            path = Path(recording.path).resolve()
            if self.recordings_root is None or not path.is_relative_to(self.recordings_root):
                context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"recording.path: {recording.path} is outside the recordings volume "
                    f"({self.recordings_root}); send the audio instead",
                )
            try:
                samples, header_rate = read_wav(path)
            except (OSError, EOFError, RuntimeError, wave.Error, ValueError) as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"recording.path: {exc}")
            rate = int(header_rate * (recording.time_expansion or 1.0))
            return model_pb2.DetectResponse(
                model_output=self._output(self.detector.detect(samples, rate), recording.id)
            )
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "source: give audio or a recording")

    def DetectStream(self, request_iterator, context):
        header, chunks = None, []
        for part in request_iterator:
            if part.HasField("header"):
                header = part.header
            else:
                chunks.append(part.pcm_s16le_chunk)
        if header is None:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "header: the stream must start with one"
            )
        if header.samplerate_hz <= 0 or header.channels <= 0:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "header: give samplerate_hz and channels"
            )
        samples = pcm_to_mono(b"".join(chunks), header.channels)
        rate = int(header.samplerate_hz * (header.time_expansion or 1.0))
        return model_pb2.DetectStreamResponse(
            model_output=self._output(self.detector.detect(samples, rate), header.recording_id)
        )


def serve(port: int, recordings_root: Path | None, host: str = "127.0.0.1") -> grpc.Server:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    model_pb2_grpc.add_ModelServicer_to_server(
        EnergyModelServicer(EnergyBandDetector(), recordings_root), server
    )
    health_servicer = health.HealthServicer()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.add_insecure_port(f"{host}:{port}")
    server.start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50061)
    parser.add_argument("--recordings-root", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    server = serve(args.port, args.recordings_root, args.host)
    log.info("energy model serving on %s:%d", args.host, args.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop(5).wait()


if __name__ == "__main__":
    main()
