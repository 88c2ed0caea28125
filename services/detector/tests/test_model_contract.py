"""The Model contract end to end: the example custom model server plugged in through RemoteModel,
and the detector's own Model server with its limits. Real servers on loopback ports, real WAV files."""

from __future__ import annotations

import shutil
import uuid
import wave
from pathlib import Path

import grpc
import numpy as np
import pytest

from acoustack import convert
from acoustack.clients import RetryPolicy
from acoustack.errors import AcoustackError, InvalidArgumentError
from acoustack.grpc_server import start_server
from acoustack.testing import factories
from acoustack.testing.servers import free_port
from acoustack.v1 import model_pb2, model_pb2_grpc
from acoustack_detector.audio_model import AudioModel
from acoustack_detector.remote_model import RemoteModel
from acoustack_detector.servicer import ModelServicer, register

MYOTIS = Path(__file__).resolve().parent / "data" / "audio" / "20170701_213954-MYOMYS-LR_0_0.5.wav"


def test_a_custom_model_server_plugs_in(example_server, recordings_root, make_recording):
    model = RemoteModel(example_server)
    model.check()
    assert (model.name, model.version) == ("energy-band", "1.0")
    recording = make_recording(recordings_root / MYOTIS.name)
    output = model.run(recording)
    assert output.recording_id == recording.id
    assert output.model_name == "energy-band"
    assert len(output.detections) >= 5  # the Myotis file holds a sequence of calls
    starts = [d.box.start_time_s for d in output.detections]
    assert starts == sorted(starts) and starts[-1] < 0.5


def test_streamed_audio_gives_the_same_detections_as_a_named_recording(
    example_server, recordings_root, make_recording
):
    recording = make_recording(recordings_root / MYOTIS.name)
    named = RemoteModel(example_server).run(recording)
    streamed = RemoteModel(example_server, send_audio=True).run(recording)
    assert [d.box for d in streamed.detections] == [d.box for d in named.detections]


def test_a_path_outside_the_recordings_volume_is_refused(example_server, tmp_path, make_recording):
    outside = tmp_path / "elsewhere.wav"
    shutil.copy(MYOTIS, outside)
    with pytest.raises(AcoustackError, match="outside the recordings volume"):
        RemoteModel(example_server).run(make_recording(outside))


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


@pytest.fixture
def detector_server(recordings_root, band_energy_model):
    servicer = ModelServicer(
        band_energy_model, recordings_root=recordings_root, max_audio_bytes=300_000
    )
    running = start_server(
        [register(servicer)], address="127.0.0.1:0", max_message_bytes=1024 * 1024
    )
    yield f"127.0.0.1:{running.port}"
    running.stop(0)


def pcm_of(path: Path) -> tuple[bytes, int]:
    with wave.open(str(path), "rb") as wav:
        return wav.readframes(wav.getnframes()), wav.getframerate()


def test_the_detector_serves_inline_audio_and_recordings_alike(
    detector_server, recordings_root, make_recording, band_energy_model
):
    assert isinstance(band_energy_model, AudioModel)
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
    by_path = RemoteModel(detector_server).run(make_recording(recordings_root / MYOTIS.name))
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
