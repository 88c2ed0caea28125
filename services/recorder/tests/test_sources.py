"""Audio sources. PyAudio cannot reach a microphone here, so the fake stands at the PyAudio boundary
only: a module whose streams yield known samples and fail on cue. Everything above it is real."""

from __future__ import annotations

import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from acoustack.errors import InvalidArgumentError
from acoustack_recorder import sources
from acoustack_recorder.resample import resample
from acoustack_recorder.sources import (
    DeviceUnavailableError,
    MicrophoneSource,
    ReplaySource,
    SyntheticCall,
    SyntheticSource,
    UnsupportedConfigurationError,
    list_input_devices,
)
from acoustack_recorder.wavfile import Pcm

AUDIO = Path(__file__).resolve().parents[2] / "detector" / "tests" / "data" / "audio"


def as_array(pcm: Pcm) -> np.ndarray:
    return np.frombuffer(pcm.data, "<i2").reshape(-1, pcm.channels)


class FakePyAudio:
    """Stands in for the `pyaudio` module: devices, format checks and streams, failing on cue."""

    def __init__(self, devices, rates=(192_000, 384_000), fail_after_reads=None):
        self.devices = devices
        self.rates = set(rates)
        self.fail_after_reads = fail_after_reads
        self.reads = 0
        self.opened = []
        module = self

        class PyAudio:
            def get_device_count(self):
                return len(module.devices)

            def get_device_info_by_index(self, index):
                return module.devices[index]

            def is_format_supported(self, rate, input_device, input_channels, input_format):
                if rate not in module.rates:
                    raise ValueError("Invalid sample rate")
                return True

            def open(self, **kwargs):
                module.opened.append(kwargs)
                return FakeStream(module, kwargs["channels"])

            def terminate(self):
                pass

        self.PyAudio = PyAudio


class FakeStream:
    def __init__(self, module, channels):
        self.module = module
        self.channels = channels
        self.counter = 0

    def read(self, frames, exception_on_overflow=True):
        self.module.reads += 1
        if (
            self.module.fail_after_reads is not None
            and self.module.reads > self.module.fail_after_reads
        ):
            raise OSError(-9999, "Unanticipated host error")
        values = (np.arange(frames * self.channels) + self.counter) % 1000
        self.counter += frames * self.channels
        return values.astype("<i2").tobytes()

    def stop_stream(self):
        pass

    def close(self):
        pass


DEVICES = [
    {"name": "bcm2835 Headphones", "maxInputChannels": 0, "defaultSampleRate": 44100.0},
    {
        "name": "UltraMic 384K 16bit r0: USB Audio",
        "maxInputChannels": 1,
        "defaultSampleRate": 384000.0,
    },
]


def test_input_devices_are_listed_with_channels_and_rate():
    devices = list_input_devices(FakePyAudio(DEVICES))
    assert [(d.index, d.name, d.max_input_channels, d.default_samplerate_hz) for d in devices] == [
        (1, "UltraMic 384K 16bit r0: USB Audio", 1, 384_000)
    ]


def test_a_microphone_by_name_records_exactly_what_the_device_gives():
    fake = FakePyAudio(DEVICES)
    mic = MicrophoneSource("ultramic", 384_000, chunk_frames=1000, pyaudio_module=fake)
    samples = mic.record(0.01)
    assert (len(samples), samples.channels) == (3840, 1)
    assert np.array_equal(as_array(samples)[:, 0], np.arange(3840) % 1000)
    assert fake.opened[0]["input_device_index"] == 1
    assert fake.opened[0]["frames_per_buffer"] == 1000


def test_an_unsupported_rate_lists_what_the_device_supports():
    mic = MicrophoneSource(1, 500_000, pyaudio_module=FakePyAudio(DEVICES))
    with pytest.raises(
        UnsupportedConfigurationError,
        match="cannot record at 500 kHz; it supports 192 kHz, 384 kHz",
    ):
        mic.record(0.01)
    with pytest.raises(
        UnsupportedConfigurationError, match="has 1 input channel\\(s\\); 2 configured"
    ):
        MicrophoneSource(1, 384_000, channels=2, pyaudio_module=FakePyAudio(DEVICES)).record(0.01)


def test_a_missing_device_names_the_devices_there_are():
    mic = MicrophoneSource("Dodotronic", 384_000, pyaudio_module=FakePyAudio(DEVICES))
    with pytest.raises(
        DeviceUnavailableError,
        match="no input device matches 'Dodotronic' \\(input devices: 1: UltraMic",
    ):
        mic.record(0.01)


def test_a_device_lost_mid_recording_fails_and_is_found_again_when_back():
    fake = FakePyAudio(DEVICES, fail_after_reads=2)
    mic = MicrophoneSource("UltraMic", 384_000, chunk_frames=1000, pyaudio_module=fake)
    with pytest.raises(DeviceUnavailableError, match="stopped delivering after 0.01 s"):
        mic.record(0.05)
    fake.devices = DEVICES[:1]  # unplugged
    with pytest.raises(DeviceUnavailableError, match="no input device matches"):
        mic.record(0.01)
    fake.devices = DEVICES  # plugged back in
    fake.fail_after_reads = None
    assert len(mic.record(0.01)) == 3840


def test_without_pyaudio_the_error_says_what_to_do(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pyaudio(name, *args, **kwargs):
        if name == "pyaudio":
            raise ImportError("No module named 'pyaudio'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyaudio)
    with pytest.raises(DeviceUnavailableError, match="PyAudio is not installed"):
        MicrophoneSource("x", 384_000).record(0.01)


def test_synthetic_calls_are_where_they_were_put():
    source = SyntheticSource(384_000, calls=[SyntheticCall(0.1), SyntheticCall(0.25)], seed=1)
    samples = as_array(source.record(0.5))[:, 0].astype(np.float32)
    assert samples.shape == (192_000,)
    energy = np.convolve(samples**2, np.ones(384), "same")
    loud = np.flatnonzero(energy > 50 * np.median(energy)) / 384_000
    assert loud.min() == pytest.approx(0.1, abs=0.003)
    assert {round(t, 1) for t in loud} <= {0.1, 0.3}  # 0.25 rounds to 0.3 here; nothing elsewhere
    assert SyntheticSource(seed=5).record(0.01) == SyntheticSource(seed=5).record(0.01)


def test_replay_loops_over_the_folder_at_the_configured_rate(tmp_path):
    for wav in AUDIO.glob("*.wav"):
        shutil.copy(wav, tmp_path / wav.name)
    slept = []
    source = ReplaySource(tmp_path, 384_000, clock=lambda: 0.0, sleep=slept.append)
    # 0.5 s at 500 kHz becomes 0.5 s at 384 kHz: three files of 0.5 s make a 1.5 s loop.
    assert len(source.loop) == 2 * 3 * 192_000
    first = source.record(1.0)
    second = source.record(1.0)  # crosses the end of the loop and starts over
    assert len(first) == len(second) == 384_000 and first.channels == second.channels == 1
    assert second.data[2 * 192_000 :] == source.loop[: 2 * 192_000]
    assert slept == [1.0, 1.0]  # real pace: each recording takes its own duration


def test_replay_of_an_empty_folder_says_so(tmp_path):
    with pytest.raises(InvalidArgumentError, match="no WAV files to replay"):
        ReplaySource(tmp_path)


def test_replay_resamples_with_the_spectrum_and_plays_every_channel_alike(tmp_path):
    # The 500 kHz file, resampled in a process of its own, is what the resampler gives in this one.
    myotis = AUDIO / "20170701_213954-MYOMYS-LR_0_0.5.wav"
    shutil.copy(myotis, tmp_path / myotis.name)
    source = ReplaySource(tmp_path, 384_000, channels=2, real_time=False)
    stereo = as_array(source.record(0.5))
    with wave.open(str(myotis), "rb") as wav:
        original = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    assert np.array_equal(stereo[:, 0], resample(original, 500_000, 384_000))
    assert np.array_equal(stereo[:, 0], stereo[:, 1])


def test_sources_on_the_same_folder_share_one_resampling_until_a_file_changes(tmp_path):
    # The start-up check's test recording and the first recording each build a source: one run of
    # the resampling process serves both.
    for wav in AUDIO.glob("*.wav"):
        shutil.copy(wav, tmp_path / wav.name)
    sources._replay_loop.cache_clear()
    first = ReplaySource(tmp_path, 384_000, real_time=False)
    second = ReplaySource(tmp_path, 384_000, real_time=False)
    assert first.record(1.0) == second.record(1.0)
    assert sources._replay_loop.cache_info().misses == 1
    # A file replaced in the folder is read again.
    myotis = tmp_path / "20170701_213954-MYOMYS-LR_0_0.5.wav"
    with wave.open(str(myotis), "rb") as wav:
        params, frames = wav.getparams(), wav.readframes(wav.getnframes())
    with wave.open(str(myotis), "wb") as wav:
        wav.setparams(params)
        wav.writeframes(bytes(len(frames) // 2))  # shorter, silent: size and content differ
    changed = ReplaySource(tmp_path, 384_000, real_time=False)
    assert changed.loop != first.loop and sources._replay_loop.cache_info().misses == 2


def test_the_resampling_process_loads_numpy_and_the_standard_library_only():
    # Each process that ends takes what it used out of memory; a light one leaves less behind and
    # starts sooner (on a Pi 3, grpcio alone is seconds).
    code = (
        "import sys, acoustack_recorder.resample; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'grpc', 'acoustack', 'pydantic', 'google', 'celery', 'ssl'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stderr


def test_a_file_that_cannot_be_resampled_is_named(tmp_path):
    # Readable by the source at start, broken by the time the resampling process reads it.
    myotis = AUDIO / "20170701_213954-MYOMYS-LR_0_0.5.wav"
    shutil.copy(myotis, tmp_path / myotis.name)
    source = ReplaySource(tmp_path, 384_000, real_time=False)
    (tmp_path / myotis.name).write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(InvalidArgumentError, match="MYOMYS-LR_0_0.5.wav: not a readable WAV file"):
        source.record(0.5)


def test_replay_of_an_unreadable_file_names_it(tmp_path):
    (tmp_path / "broken.wav").write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(InvalidArgumentError, match="broken.wav: not a readable WAV file"):
        ReplaySource(tmp_path)


def test_the_recorder_service_does_not_load_numpy():
    # numpy held ~13 MB in each of the recorder's two processes; only the synthetic source and
    # the replay's resampling process need it.
    code = (
        "import sys, acoustack_recorder.__main__, acoustack_recorder.checks, "
        "acoustack_recorder.wiring, acoustack_recorder.tasks; "
        "from acoustack_recorder.sources import ReplaySource; "
        f"ReplaySource({str(AUDIO)!r}, 384_000, real_time=False).record(3.0); "
        "print('numpy' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False", done.stderr
