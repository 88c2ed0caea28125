"""WAV + GUANO files as a field ecologist's tools would read them, written crash-safely."""

from __future__ import annotations

import datetime as dt
import uuid
import wave

import numpy as np
import pytest

from acoustack.errors import InvalidArgumentError
from acoustack_recorder.wavfile import (
    GuanoFields,
    Pcm,
    leftover_partials,
    read_guano,
    recording_file_name,
    write_recording,
)

T0 = dt.datetime(2026, 6, 1, 21, 30, 0, 123000, tzinfo=dt.UTC)


def fields(**overrides) -> GuanoFields:
    values = dict(
        timestamp=T0, capture_samplerate_hz=384_000, time_expansion=1.0, length_s=0.01,
        make="Dodotronic", model="UltraMic 384K", serial="10000000abcdef01", firmware="acoustack 0.1.0",
        deployment="meadow", deployment_id=uuid.uuid4(), device_id="pi-10000000abcdef01",
        source_id="mic-0", recording_id=uuid.uuid4(),
        latitude=52.2053, longitude=0.1218,
    )  # fmt: skip
    values.update(overrides)
    return GuanoFields(**values)


def test_a_recording_reads_back_with_its_samples_and_guano(tmp_path):
    samples = (np.sin(np.arange(3840) / 3) * 12000).astype(np.int16)
    meta = fields()
    path = write_recording(tmp_path, Pcm(samples.astype("<i2").tobytes()), meta)
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (384_000, 1, 2)
        assert np.array_equal(np.frombuffer(wav.readframes(wav.getnframes()), "<i2"), samples)
    guano = read_guano(path)
    assert guano["GUANO|Version"] == "1.0"
    assert guano["Timestamp"] == "2026-06-01T21:30:00.123+00:00"
    assert guano["Loc Position"] == "52.205300 0.121800"
    assert guano["Serial"] == "10000000abcdef01"
    assert guano["Samplerate"] == "384000"
    assert guano["acoustack|Recording ID"] == str(meta.recording_id)
    assert guano["acoustack|Source ID"] == "mic-0"
    assert leftover_partials(tmp_path) == []


def test_time_expansion_lowers_the_header_rate_and_keeps_the_capture_rate(tmp_path):
    path = write_recording(tmp_path, Pcm(bytes(200)), fields(time_expansion=10.0))
    with wave.open(str(path), "rb") as wav:
        assert wav.getframerate() == 38_400
    guano = read_guano(path)
    assert (guano["Samplerate"], guano["TE"]) == ("384000", "10")


def test_stereo_is_interleaved(tmp_path):
    stereo = np.stack([np.arange(10, dtype=np.int16), -np.arange(10, dtype=np.int16)], axis=1)
    path = write_recording(tmp_path, Pcm(stereo.astype("<i2").tobytes(), 2), fields())
    with wave.open(str(path), "rb") as wav:
        assert wav.getnchannels() == 2
        frames = np.frombuffer(wav.readframes(10), "<i2").reshape(-1, 2)
    assert np.array_equal(frames, stereo)


def test_names_are_unique_within_the_same_millisecond_and_sort_by_time():
    a, b = uuid.uuid4(), uuid.uuid4()
    assert recording_file_name(T0, "mic-0", a) != recording_file_name(T0, "mic-0", b)
    later = recording_file_name(T0 + dt.timedelta(seconds=1), "mic-0", a)
    assert sorted([later, recording_file_name(T0, "mic-0", b)])[1] == later
    assert recording_file_name(T0, "usb mic/2", a).startswith("20260601T213000.123Z_usb-mic-2_")


def test_a_partial_file_from_a_crash_is_found(tmp_path):
    (tmp_path / ".20260601T213000.123Z_mic-0_abc.wav.partial").write_bytes(b"RIFF")
    assert [p.name for p in leftover_partials(tmp_path)] == [
        ".20260601T213000.123Z_mic-0_abc.wav.partial"
    ]


def test_bad_input_is_named(tmp_path):
    with pytest.raises(
        InvalidArgumentError, match="9 bytes is not a whole number of 16-bit frames"
    ):
        Pcm(bytes(9))
    with pytest.raises(InvalidArgumentError, match="6 bytes is not a whole number .* of 4 channel"):
        Pcm(bytes(6), 4)
    with pytest.raises(InvalidArgumentError, match="no newlines"):
        write_recording(tmp_path, Pcm(bytes(20)), fields(make="evil\nGUANO|Version: 9"))
    (tmp_path / "x.wav").write_bytes(b"not a wav")
    with pytest.raises(InvalidArgumentError, match="x.wav: not a WAV file"):
        read_guano(tmp_path / "x.wav")
