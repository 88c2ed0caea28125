"""`acoustack devices` through the real CLI entry point, with PyAudio faked at its boundary."""

from __future__ import annotations

import json
import sys
import types

from acoustack import cli


def fake_pyaudio_module() -> types.ModuleType:
    devices = [
        {"name": "HDMI", "maxInputChannels": 0, "defaultSampleRate": 48000.0},
        {"name": "UltraMic 384K", "maxInputChannels": 1, "defaultSampleRate": 384000.0},
        {"name": "Zoom F3", "maxInputChannels": 2, "defaultSampleRate": 192000.0},
    ]

    class PyAudio:
        def get_device_count(self):
            return len(devices)

        def get_device_info_by_index(self, index):
            return devices[index]

        def terminate(self):
            pass

    module = types.ModuleType("pyaudio")
    module.PyAudio = PyAudio
    return module


def test_devices_lists_inputs_with_channels_and_rate(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyaudio", fake_pyaudio_module())
    assert cli.main(["devices", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == [
        {"index": 1, "name": "UltraMic 384K", "channels": 1, "default_samplerate_hz": 384000},
        {"index": 2, "name": "Zoom F3", "channels": 2, "default_samplerate_hz": 192000},
    ]
    assert cli.main(["devices"]) == 0
    table = capsys.readouterr().out
    assert "384 kHz  UltraMic 384K" in table


def test_devices_without_pyaudio_says_what_to_do(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyaudio", None)  # import fails
    assert cli.main(["devices"]) == 1
    assert "PyAudio is not installed" in capsys.readouterr().err
