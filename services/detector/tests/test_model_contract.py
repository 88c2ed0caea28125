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
from acoustack.errors import AcoustackError, InvalidArgumentError
from acoustack.grpc_server import start_server
from acoustack.testing import factories
from acoustack.testing.servers import free_port
from acoustack.v1 import model_pb2, model_pb2_grpc, types_pb2
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


def test_a_24_bit_stereo_file_is_streamed_as_16_bit_of_its_first_channel(
    example_server, recordings_root, make_recording
):
    """The contract's audio is 16-bit: other files are converted, not refused."""
    with wave.open(str(MYOTIS), "rb") as wav:
        rate, pcm16 = wav.getframerate(), np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    wide = recordings_root / "wide.wav"
    left = pcm16.astype(np.int32) << 8  # 24-bit, the same values
    right = np.zeros_like(left)
    frames = np.stack([left, right], axis=1).reshape(-1)
    packed = np.frombuffer(frames.astype("<i4").tobytes(), np.uint8).reshape(-1, 4)[:, :3]
    with wave.open(str(wide), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(3)
        out.setframerate(rate)
        out.writeframes(packed.tobytes())
    sixteen = RemoteModel(example_server, send_audio=True).run(
        make_recording(recordings_root / MYOTIS.name)
    )
    converted = RemoteModel(example_server, send_audio=True).run(make_recording(wide))
    assert converted.detections and [d.box for d in converted.detections] == [
        d.box for d in sixteen.detections
    ]


def test_a_path_outside_the_recordings_volume_is_refused(example_server, tmp_path, make_recording):
    outside = tmp_path / "elsewhere.wav"
    shutil.copy(MYOTIS, outside)
    with pytest.raises(AcoustackError, match="outside the recordings volume"):
        RemoteModel(example_server).run(make_recording(outside))


def test_an_unreadable_file_is_named_before_anything_is_sent(example_server, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEnot really")
    with pytest.raises(InvalidArgumentError, match="broken.wav: is corrupt or truncated"):
        RemoteModel(example_server, send_audio=True).run(
            factories.recording(uuid.uuid4(), path=str(broken))
        )


def test_an_unreachable_model_server_is_reported_by_address():
    port = free_port()
    model = RemoteModel(f"127.0.0.1:{port}")
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


def _detect_error(target, request) -> tuple[grpc.StatusCode, str]:
    stub = model_pb2_grpc.ModelStub(grpc.insecure_channel(target))
    with pytest.raises(grpc.RpcError) as info:
        stub.Detect(request, timeout=10)
    return info.value.code(), info.value.details()


def _inline(pcm: bytes, **header) -> model_pb2.DetectRequest:
    return model_pb2.DetectRequest(
        audio=model_pb2.AudioData(header=model_pb2.AudioHeader(**header), pcm_s16le=pcm)
    )


@pytest.mark.parametrize(
    ("header", "code", "details"),
    [
        (
            {"samplerate_hz": 1, "channels": 1},
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "audio: 1000 s of audio (1000 frames at 1 Hz, time expansion 1) is more than the "
            "limit of 86400 s",
        ),
        (
            {"samplerate_hz": 2_000_001, "channels": 1},
            grpc.StatusCode.INVALID_ARGUMENT,
            "audio.header.samplerate_hz: Input should be less than or equal to 2000000",
        ),
        (
            {"samplerate_hz": -44_100, "channels": 1},
            grpc.StatusCode.INVALID_ARGUMENT,
            "audio.header.samplerate_hz: Input should be greater than 0",
        ),
        (
            {"samplerate_hz": 250_000, "channels": 65},
            grpc.StatusCode.INVALID_ARGUMENT,
            "audio.header.channels: Input should be less than or equal to 64",
        ),
        (
            {"samplerate_hz": 250_000, "channels": 1, "time_expansion": float("nan")},
            grpc.StatusCode.INVALID_ARGUMENT,
            "audio.header.time_expansion: Input should be a finite number",
        ),
    ],
    ids=["a day of audio in 2 kB", "rate too high", "negative rate", "channels", "NaN expansion"],
)
def test_audio_headers_beyond_a_recordings_limits_are_refused_by_field(
    recordings_root, band_energy_model, header, code, details
):
    servicer = ModelServicer(band_energy_model, recordings_root=recordings_root, max_audio_s=100)
    running = start_server([register(servicer)], address="127.0.0.1:0")
    try:
        got = _detect_error(f"127.0.0.1:{running.port}", _inline(b"\1\0" * 1000, **header))
    finally:
        running.stop(0)
    assert got[0] is code, got
    assert got[1].startswith(details.replace("86400", "100")), got[1]


@pytest.mark.parametrize(
    ("path", "code", "details"),
    [
        ("/rec/\x00.wav", grpc.StatusCode.INVALID_ARGUMENT, "recording.path: contains a NUL byte"),
        (
            "/elsewhere/" + "x" * 900,
            grpc.StatusCode.PERMISSION_DENIED,
            f"recording.path: {'/elsewhere/' + 'x' * 89!r}… (911 characters) is outside",
        ),
    ],
    ids=["NUL", "long path outside"],
)
def test_a_recording_path_is_checked_before_any_file_is_touched(
    detector_server, path, code, details
):
    got = _detect_error(detector_server, model_pb2.DetectRequest(recording=pb_recording(path=path)))
    assert got[0] is code, got
    assert got[1].startswith(details), got[1]


def pb_recording(**fields):
    return types_pb2.Recording(id=str(uuid.uuid4()), **fields)


def test_the_self_check_checks_every_model_the_program_names(example_server, band_energy_model):
    from acoustack_detector.checks import self_check

    down = f"127.0.0.1:{free_port()}"
    config = {
        "detection": {
            "model": f"grpc://{example_server}",
            "extra_models": [
                {"model": "batdetect2"},
                {"model": f"grpc://{down}", "name": "gone"},
                {"model": f"grpc://127.0.0.1:{free_port()}", "name": "maybe", "required": False},
            ],
        }
    }
    results = self_check(lambda: band_energy_model, None, config)
    verdicts = {r.component: (r.ok, r.detail) for r in results}
    assert verdicts["model"][0] and "energy-band 1.0" in verdicts["model"][1]
    assert verdicts["extra_models[0]"][0]  # the bundled one (here the band-energy stand-in)
    assert not verdicts["extra_models[1]"][0]
    assert f"model server {down}" in verdicts["extra_models[1]"][1]
    assert (
        verdicts["extra_models[2]"][0]
        and "optional, not available now" in (verdicts["extra_models[2]"][1])
    )
