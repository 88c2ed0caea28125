"""The Model contract end to end: the example custom model server plugged in through RemoteModel,
and the detector's own Model server with its limits. Real servers on loopback ports, real WAV files."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import time
import uuid
import wave
from pathlib import Path

import grpc
import numpy as np
import pytest

from acoustack import convert, schema
from acoustack.clients import RetryPolicy
from acoustack.errors import AcoustackError, InvalidArgumentError
from acoustack.grpc_server import start_server
from acoustack.healthcheck import check
from acoustack.testing import factories
from acoustack.testing.servers import free_port
from acoustack.v1 import model_pb2, model_pb2_grpc
from acoustack_detector.audio_model import AudioModel
from acoustack_detector.model_server import ModelServicer, register
from acoustack_detector.remote_model import RemoteModel

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
    root = tmp_path / "recordings"
    root.mkdir()
    shutil.copy(MYOTIS, root / MYOTIS.name)
    return root


@pytest.fixture
def example_server(recordings_root):
    """The example model server as its own process, as a researcher would run it."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLE),
            "--port",
            str(port),
            "--recordings-root",
            str(recordings_root),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    target = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not check(target)[0]:
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline, "the example model server did not start"
        time.sleep(0.1)
    yield target
    proc.terminate()
    proc.wait(10)


def recording_at(path: Path, **overrides) -> schema.Recording:
    with wave.open(str(path), "rb") as wav:
        rate, frames = wav.getframerate(), wav.getnframes()
    return factories.recording(
        uuid.uuid4(),
        path=str(path),
        capture_samplerate_hz=rate,
        duration_s=frames / rate,
        **overrides,
    )


def test_a_custom_model_server_plugs_in(example_server, recordings_root):
    model = RemoteModel(example_server)
    model.check()
    assert (model.name, model.version) == ("energy-band", "1.0")
    recording = recording_at(recordings_root / MYOTIS.name)
    output = model.run(recording)
    assert output.recording_id == recording.id
    assert output.model_name == "energy-band"
    assert len(output.detections) >= 5  # the Myotis file holds a sequence of calls
    starts = [d.box.start_time_s for d in output.detections]
    assert starts == sorted(starts) and starts[-1] < 0.5


def test_streamed_audio_gives_the_same_detections_as_a_named_recording(
    example_server, recordings_root
):
    recording = recording_at(recordings_root / MYOTIS.name)
    named = RemoteModel(example_server).run(recording)
    streamed = RemoteModel(example_server, send_audio=True).run(recording)
    assert [d.box for d in streamed.detections] == [d.box for d in named.detections]


def test_a_path_outside_the_recordings_volume_is_refused(example_server, tmp_path):
    outside = tmp_path / "elsewhere.wav"
    shutil.copy(MYOTIS, outside)
    with pytest.raises(AcoustackError, match="outside the recordings volume"):
        RemoteModel(example_server).run(recording_at(outside))


def test_an_unreadable_file_is_named_before_anything_is_sent(example_server, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEnot really")
    with pytest.raises(InvalidArgumentError, match="broken.wav: not a readable WAV file"):
        RemoteModel(example_server, send_audio=True).run(
            factories.recording(uuid.uuid4(), path=str(broken))
        )


def test_an_unreachable_model_server_is_reported_by_address():
    port = free_port()
    model = RemoteModel(f"127.0.0.1:{port}", retry=RetryPolicy(budget_s=0.3))
    with pytest.raises(AcoustackError, match=f"model server 127.0.0.1:{port}"):
        model.check()


class BandEnergyAudioModel:
    """The example's detector as an in-process AudioModel, to serve through the detector's server."""

    name = "energy-band"
    version = "1.0"
    samplerate_hz = 0
    classes = ("band-energy",)

    def __init__(self) -> None:
        self.detector = load_example().EnergyBandDetector()

    def detect_audio(self, samples, samplerate_hz, time_expansion=1.0):
        mono = samples if samples.ndim == 1 else samples[:, 0]
        found = self.detector.detect(mono, int(samplerate_hz * time_expansion))
        return [schema.Detection.model_validate(convert.detection_dict(d)) for d in found]

    def detect_file(self, path, time_expansion=1.0):
        samples, rate = load_example().read_wav(path)
        return self.detect_audio(samples, rate, time_expansion)


@pytest.fixture
def detector_server(recordings_root):
    servicer = ModelServicer(
        BandEnergyAudioModel(), recordings_root=recordings_root, max_audio_bytes=300_000
    )
    running = start_server(
        [register(servicer)], address="127.0.0.1:0", max_message_bytes=1024 * 1024
    )
    yield f"127.0.0.1:{running.port}"
    running.stop(0)


def pcm_of(path: Path) -> tuple[bytes, int]:
    with wave.open(str(path), "rb") as wav:
        return wav.readframes(wav.getnframes()), wav.getframerate()


def test_the_detector_serves_inline_audio_and_recordings_alike(detector_server, recordings_root):
    assert isinstance(BandEnergyAudioModel(), AudioModel)
    stub = model_pb2_grpc.ModelStub(grpc.insecure_channel(detector_server))
    info = stub.Info(model_pb2.InfoRequest(), timeout=5)
    assert (info.name, list(info.classes)) == ("energy-band", ["band-energy"])
    pcm, rate = pcm_of(MYOTIS)
    inline = stub.Detect(
        model_pb2.DetectRequest(
            audio=model_pb2.AudioData(
                header=model_pb2.AudioHeader(samplerate_hz=rate, channels=1, recording_id="r1"),
                pcm_s16le=pcm,
            )
        ),
        timeout=30,
    ).model_output
    by_path = RemoteModel(detector_server).run(recording_at(recordings_root / MYOTIS.name))
    assert inline.recording_id == "r1"
    assert [convert.detection_dict(d)["box"] for d in inline.detections] == [
        d.box.model_dump() for d in by_path.detections
    ]


def test_oversize_audio_is_refused_with_the_limit(detector_server):
    stub = model_pb2_grpc.ModelStub(grpc.insecure_channel(detector_server))
    pcm = np.zeros(400_000, dtype="<i2").tobytes()  # 800 kB
    header = model_pb2.AudioHeader(samplerate_hz=384_000, channels=1)
    with pytest.raises(grpc.RpcError) as unary:
        stub.Detect(
            model_pb2.DetectRequest(
                audio=model_pb2.AudioData(header=header, pcm_s16le=pcm[:700_000] * 2)
            ),
            timeout=10,
        )
    assert unary.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "1048576" in unary.value.details()  # gRPC names its message limit

    def stream():
        yield model_pb2.DetectStreamRequest(header=header)
        for start in range(0, len(pcm), 100_000):
            yield model_pb2.DetectStreamRequest(pcm_s16le_chunk=pcm[start : start + 100_000])

    with pytest.raises(grpc.RpcError) as streamed:
        stub.DetectStream(stream(), timeout=10)
    assert streamed.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "limit of 300000 bytes" in streamed.value.details()


def test_bad_audio_headers_name_the_field(detector_server):
    stub = model_pb2_grpc.ModelStub(grpc.insecure_channel(detector_server))
    with pytest.raises(grpc.RpcError) as info:
        stub.Detect(
            model_pb2.DetectRequest(
                audio=model_pb2.AudioData(
                    header=model_pb2.AudioHeader(channels=1), pcm_s16le=b"\0\0" * 100
                )
            ),
            timeout=10,
        )
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "audio.header.samplerate_hz: required (Hz)"
