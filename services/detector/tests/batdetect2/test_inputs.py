"""What the bundled model does with the inputs a field device and a user produce: several channels,
time-expanded files, silence, and files that are not audio at all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from acoustack.errors import InvalidArgumentError, NotFoundError
from acoustack_detector import testing

AUDIO = Path(__file__).resolve().parents[1] / "data" / "audio"


def test_stereo_uses_the_first_channel(bundled_model, tmp_path, reference, assert_same_detections):
    stereo = testing.make_stereo(AUDIO, tmp_path / "stereo.wav", source_channel=0)
    assert_same_detections(bundled_model.predict_file(stereo), reference("eptser"))


def test_stereo_uses_the_configured_channel(
    bundled_model, tmp_path, reference, assert_same_detections
):
    stereo = testing.make_stereo(AUDIO, tmp_path / "stereo.wav", source_channel=1)
    assert_same_detections(bundled_model.predict_file(stereo, channel=1), reference("eptser"))
    # and the other channel is another recording: different calls
    assert bundled_model.predict_file(stereo, channel=0) != bundled_model.predict_file(
        stereo, channel=1
    )


def test_stereo_audio_in_memory(bundled_model, tmp_path, input_path):
    samples, rate = testing.read_pcm16(
        testing.make_stereo(AUDIO, tmp_path / "s.wav", source_channel=1)
    )
    expected = bundled_model.predict_file(input_path("eptser"))
    assert bundled_model.predict_audio(samples, rate, channel=1) == expected


def test_a_channel_that_does_not_exist_is_refused(bundled_model, input_path):
    with pytest.raises(
        InvalidArgumentError, match=r"EPTSER.*1 channel\(s\); channel 1 does not exist"
    ):
        bundled_model.predict_file(input_path("eptser"), channel=1)


def test_time_expanded_file_gives_the_original_detections(bundled_model, tmp_path, input_path):
    """384 kHz audio written at 38.4 kHz by a time-expansion device, read with expansion 10."""
    expanded = testing.make_time_expanded(AUDIO, tmp_path / "te.wav", factor=10)
    assert testing.read_pcm16(expanded)[1] == 38_400
    original = bundled_model.predict_file(input_path("eptser"))
    assert bundled_model.predict_file(expanded, time_expansion=10) == original
    assert (
        bundled_model.detect_file(expanded, 10)[0].box
        == bundled_model.detect_file(input_path("eptser"))[0].box
    )
    # Read at face value, the same samples are a 38.4 kHz recording: nothing above 19.2 kHz.
    assert all(d.high_freq <= 19_200 for d in bundled_model.predict_file(expanded))


def test_capture_rate_must_be_whole_hertz(bundled_model, input_path):
    with pytest.raises(InvalidArgumentError, match="not a whole number of hertz"):
        bundled_model.predict_file(input_path("eptser"), time_expansion=1.0000123)
    with pytest.raises(InvalidArgumentError, match="time expansion must be a positive number"):
        bundled_model.predict_file(input_path("eptser"), time_expansion=0)


def test_silent_file_gives_no_detections(bundled_model, input_path, reference):
    """Digital silence: batdetect2 reports the network's bias as ~100 calls per second (its
    fixture records them); acoustack reports none."""
    assert reference("silent")["count"] > 0
    assert bundled_model.predict_file(input_path("silent")) == []
    assert bundled_model.detect_audio(np.zeros(500_000, dtype=np.float32), 500_000) == []


def test_silence_in_one_chunk_does_not_hide_calls_in_another(bundled_model, input_path):
    samples, rate = testing.read_pcm16(input_path("eptser"))
    padded = np.concatenate([np.zeros(4 * rate, dtype=np.int16), samples[:, 0]])
    found = bundled_model.predict_audio(padded, rate)
    assert found and min(d.start_time for d in found) >= 3.0  # the first chunk is silent


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "is empty"),
        (b"this is a text file, not audio\n", "not a WAV file"),
        (
            b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00",
            "no fmt chunk|fmt chunk is too short",
        ),
        (b"RIFF\x04\x00\x00\x00WAVE", "no fmt chunk"),
    ],
    ids=["empty", "text", "truncated-header", "no-chunks"],
)
def test_unreadable_input_is_an_error_naming_the_file(bundled_model, tmp_path, content, problem):
    path = tmp_path / "broken recording.wav"
    path.write_bytes(content)
    with pytest.raises(InvalidArgumentError, match=problem) as raised:
        bundled_model.predict_file(path)
    assert str(path) in str(raised.value)


def test_wav_header_without_samples_is_an_error(bundled_model, tmp_path, input_path):
    header_only = tmp_path / "header-only.wav"
    header_only.write_bytes(input_path("eptser").read_bytes()[:44])
    with pytest.raises(InvalidArgumentError, match="has no audio samples") as raised:
        bundled_model.detect_file(header_only)
    assert "header-only.wav" in str(raised.value)


def test_a_missing_file_is_not_found(bundled_model, tmp_path):
    with pytest.raises(NotFoundError, match="no such file"):
        bundled_model.detect_file(tmp_path / "nowhere.wav")


def test_bad_audio_arrays_are_refused(bundled_model):
    with pytest.raises(InvalidArgumentError, match="frames > 0"):
        bundled_model.predict_audio(np.zeros(0, dtype=np.float32), 384_000)
    with pytest.raises(InvalidArgumentError, match="NaN"):
        bundled_model.predict_audio(np.full(1000, np.nan, dtype=np.float32), 384_000)
    with pytest.raises(InvalidArgumentError, match="threshold"):
        bundled_model.predict_audio(np.zeros(1000, dtype=np.float32), 384_000, threshold=2)
