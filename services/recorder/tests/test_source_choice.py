"""The default source: the microphone when there is one, else the replay of the bat recordings."""

from __future__ import annotations

import types
from pathlib import Path

from acoustack.program_config import RecordingConfig
from acoustack_recorder.settings import RecorderSettings
from acoustack_recorder.sources import MicrophoneSource, ReplaySource
from acoustack_recorder.wiring import build_source

AUDIO = Path(__file__).resolve().parents[2] / "detector" / "tests" / "data" / "audio"


def pyaudio_with(devices):
    class PyAudio:
        def get_device_count(self):
            return len(devices)

        def get_device_info_by_index(self, index):
            return devices[index]

        def terminate(self):
            pass

    return types.SimpleNamespace(PyAudio=PyAudio)


def settings(**values) -> RecorderSettings:
    return RecorderSettings.load(
        "RECORDER", {"RECORDER_BROKER_URL": "amqp://x", "RECORDER_REPLAY_DIR": str(AUDIO), **values}
    )


def test_without_a_microphone_the_default_source_replays_the_bat_recordings():
    assert settings().source == "auto"
    source = build_source(settings(), RecordingConfig(), pyaudio_with([]))
    assert isinstance(source, ReplaySource)
    assert [p.name for p in source.files] == sorted(p.name for p in AUDIO.glob("*.wav"))


def test_with_a_microphone_the_default_source_records_from_it():
    mic = {"name": "UltraMic 384K", "maxInputChannels": 1, "defaultSampleRate": 384000.0}
    source = build_source(settings(), RecordingConfig(), pyaudio_with([mic]))
    assert isinstance(source, MicrophoneSource)
    assert source.device == 0
