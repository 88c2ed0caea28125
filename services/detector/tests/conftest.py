"""Fixtures for the detector's tests: real WAV files, and the example model server as a process."""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import subprocess
import sys
import threading
import time
import uuid
import wave
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from acoustack import convert, schema
from acoustack.errors import InvalidArgumentError
from acoustack.testing import factories
from acoustack.testing.servers import free_port
from acoustack.v1 import model_pb2, model_pb2_grpc, types_pb2

REPO = Path(__file__).resolve().parents[3]
AUDIO = Path(__file__).resolve().parent / "data" / "audio"
MYOTIS = AUDIO / "20170701_213954-MYOMYS-LR_0_0.5.wav"
EXAMPLE = REPO / "examples" / "energy_model" / "energy_model.py"


def load_example():
    if "energy_model" not in sys.modules:
        spec = importlib.util.spec_from_file_location("energy_model", EXAMPLE)
        module = importlib.util.module_from_spec(spec)
        sys.modules["energy_model"] = module  # dataclasses look their module up while it loads
        spec.loader.exec_module(module)
    return sys.modules["energy_model"]


@pytest.fixture
def recordings_root(tmp_path) -> Path:
    """A recordings volume holding one real bat recording."""
    root = tmp_path / "recordings"
    root.mkdir()
    shutil.copy(MYOTIS, root / MYOTIS.name)
    return root


@pytest.fixture
def make_recording():
    """A schema recording describing a WAV file on disk (its real rate and duration)."""

    def make(path: Path, deployment_id=None, **overrides) -> schema.Recording:
        with wave.open(str(path), "rb") as wav:
            rate, frames = wav.getframerate(), wav.getnframes()
        return factories.recording(
            deployment_id or uuid.uuid4(),
            path=str(path),
            capture_samplerate_hz=rate,
            duration_s=frames / rate,
            **overrides,
        )

    return make


def answers_info(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        try:
            model_pb2_grpc.ModelStub(channel).Info(model_pb2.InfoRequest(), timeout=1)
        except grpc.RpcError:
            return False
    return True


@contextlib.contextmanager
def model_server_process(script: Path, recordings_root: Path | None) -> Iterator[str]:
    """A model server script (the example, or a copy of it) as its own process, as a researcher
    would run it; yields its address once it answers Info (a broken copy may lack health)."""
    port = free_port()
    command = [sys.executable, str(script), "--port", str(port)]
    if recordings_root is not None:
        command += ["--recordings-root", str(recordings_root)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    target = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not answers_info(target):
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, f"the model server {script.name} did not start"
            time.sleep(0.1)
        yield target
    finally:
        # Its SIGTERM lets calls in flight finish for up to 5 s; on a loaded machine the
        # interpreter's exit can take longer still, which is no fault of the test.
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def start_model_server():
    """``start_model_server(script, recordings_root)``: model_server_process, for a test's own
    copy of a server."""
    return model_server_process


@pytest.fixture
def example_server(recordings_root):
    """The example model server as its own process."""
    with model_server_process(EXAMPLE, recordings_root) as target:
        yield target


class BandEnergyAudioModel:
    """The example's detector as an in-process AudioModel (what the detector's server serves)."""

    name = "energy-band"
    version = "1.0"
    samplerate_hz = 0
    classes = ("band-energy",)

    def __init__(self) -> None:
        self.example = load_example()
        self.detector = self.example.EnergyBandDetector()

    def detect_audio(self, samples, samplerate_hz, time_expansion=1.0):
        mono = samples if samples.ndim == 1 else samples[:, 0]
        found = self.detector.detect(mono, int(samplerate_hz * time_expansion))
        return [schema.Detection.model_validate(convert.detection_dict(d)) for d in found]

    def detect_file(self, path, time_expansion=1.0):
        try:
            samples, rate = self.example.read_wav(path)
        except (OSError, EOFError, RuntimeError, ValueError, wave.Error) as exc:
            raise InvalidArgumentError(f"{path}: not a readable WAV file ({exc})") from None
        return self.detect_audio(samples, rate, time_expansion)


@pytest.fixture
def band_energy_model() -> BandEnergyAudioModel:
    return BandEnergyAudioModel()


class ScriptedModelServer(model_pb2_grpc.ModelServicer):
    """A model server that answers as a test tells it. Each Detect / DetectStream call takes
    the next of ``answers`` (the last one repeats): a status code (the call fails with it),
    ``HANG`` (it never answers: it waits until the client gives up), a ModelOutput to return, or
    None (a response without an output)."""

    HANG = "hang"

    def __init__(self) -> None:
        self.answers: list = [good_output()]
        self.calls = 0
        self.info = model_pb2.InfoResponse(name="scripted", version="0.1", classes=["bat"])
        self._lock = threading.Lock()

    @staticmethod
    def good_output(detections: int = 4) -> types_pb2.ModelOutput:
        return good_output(detections)

    def Info(self, request, context):
        return self.info

    def _answer(self, context):
        with self._lock:
            answer = self.answers[min(self.calls, len(self.answers) - 1)]
            self.calls += 1
        if answer == self.HANG:
            deadline = time.monotonic() + 30  # bounded, should the client never go away
            while context.is_active() and time.monotonic() < deadline:
                time.sleep(0.02)
            context.abort(grpc.StatusCode.CANCELLED, "gave up")
        if isinstance(answer, grpc.StatusCode):
            context.abort(answer, f"scripted {answer.name.lower()}")
        return answer

    def Detect(self, request, context):
        return model_pb2.DetectResponse(model_output=self._answer(context))

    def DetectStream(self, request_iterator, context):
        for _ in request_iterator:
            pass
        return model_pb2.DetectStreamResponse(model_output=self._answer(context))


def good_output(detections: int = 4) -> types_pb2.ModelOutput:
    """What a well-behaved server answers for a 0.5 s recording."""
    output = types_pb2.ModelOutput()
    for i in range(detections):
        output.detections.add(
            prediction_type=types_pb2.PREDICTION_TYPE_EVENT,
            box=types_pb2.BoundingBox(
                start_time_s=0.1 * i,
                end_time_s=0.1 * i + 0.005,
                low_freq_hz=40e3,
                high_freq_hz=60e3,
            ),
            detection_score=0.9,
            tags=[types_pb2.PredictedTag(tag=types_pb2.Tag(key="species", value="Myotis"))],
        )
    return output


@pytest.fixture
def scripted_server():
    """(target, servicer): a ScriptedModelServer on a loopback port."""
    servicer = ScriptedModelServer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    model_pb2_grpc.add_ModelServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", servicer
    server.stop(0)
