"""acoustack's BatDetect2 (ONNX + numpy) against batdetect2 1.3.1's own API on the same audio.

The fixtures in tests/data/reference were written by `make reference` (batdetect2.api.process_file
with its default configuration). Same count, same classes, boxes within 1 ms and 500 Hz, detection
probability within 0.01, compared as sorted sets.
"""

from __future__ import annotations

import numpy as np
import pytest

from acoustack import schema
from acoustack_detector import testing
from acoustack_detector.batdetect2 import BatDetect2Onnx, SessionSettings

RECORDINGS = list(testing.RECORDING_FIXTURES)
CAPTURE_RATES = [f"rate_{rate // 1000}k" for rate in testing.CAPTURE_RATES_HZ if rate != 384_000]


@pytest.mark.parametrize("name", RECORDINGS)
def test_each_recording_matches_batdetect2(
    bundled_model, input_path, reference, assert_same_detections, name
):
    fixture = reference(name)
    assert fixture["count"] > 0
    assert_same_detections(bundled_model.predict_file(input_path(name)), fixture)


def test_long_multi_chunk_file_matches_batdetect2(
    bundled_model, input_path, reference, assert_same_detections
):
    fixture = reference("long")
    duration_s = fixture["input"]["frames"] / fixture["input"]["samplerate_hz"]
    assert duration_s > 2 * bundled_model.metadata.decoding.chunk_size_s  # three chunks, one short
    found = bundled_model.predict_file(input_path("long"))
    assert_same_detections(found, fixture)
    assert max(d.start_time for d in found) > 6.0  # the last chunk's calls are shifted in time


@pytest.mark.parametrize("name", CAPTURE_RATES)
def test_every_capture_rate_matches_batdetect2(
    bundled_model, input_path, reference, assert_same_detections, name
):
    """192, 250, 256 and 500 kHz versions of the 384 kHz recording (itself tested above)."""
    assert_same_detections(bundled_model.predict_file(input_path(name)), reference(name))


def test_file_shorter_than_the_spectrogram_minimum_matches_batdetect2(
    bundled_model, input_path, reference, assert_same_detections
):
    assert_same_detections(bundled_model.predict_file(input_path("short")), reference("short"))


def test_detections_are_in_batdetect2s_units_and_precision(bundled_model, input_path):
    found = bundled_model.predict_file(input_path("eptser"))
    for detection in found:
        assert 0 <= detection.start_time <= detection.end_time <= 0.6
        assert 10_000 <= detection.low_freq <= detection.high_freq <= 192_000
        assert detection.class_name in bundled_model.classes
        assert 0 <= detection.class_prob <= detection.det_prob <= 1
        assert round(detection.start_time, 4) == detection.start_time
        assert round(detection.det_prob, 3) == detection.det_prob
    assert list(found) == sorted(found, key=lambda d: (d.start_time, d.low_freq))


def test_schema_detections_carry_the_same_calls(bundled_model, input_path):
    plain = bundled_model.predict_file(input_path("rhifer"))
    detections = bundled_model.detect_file(input_path("rhifer"))
    assert len(detections) == len(plain)
    for ours, call in zip(detections, plain, strict=True):
        assert isinstance(ours, schema.Detection)
        assert ours.box == schema.BoundingBox(
            start_time_s=call.start_time,
            end_time_s=call.end_time,
            low_freq_hz=call.low_freq,
            high_freq_hz=call.high_freq,
        )
        assert ours.detection_score == call.det_prob
        assert [(t.tag.key, t.tag.value, t.confidence) for t in ours.tags] == [
            ("species", call.class_name, call.class_prob)
        ]
    assert "Rhinolophus ferrumequinum" in {
        d.tags[0].tag.value for d in detections if d.detection_score > 0.1
    }


def test_audio_in_memory_gives_the_same_detections_as_the_file(bundled_model, input_path):
    samples, rate = testing.read_pcm16(input_path("myomys"))
    from_file = bundled_model.predict_file(input_path("myomys"))
    assert bundled_model.predict_audio(samples, rate) == from_file  # int16 scaled like the reader
    as_float = samples[:, 0].astype(np.float32) / np.float32(32768)
    assert bundled_model.predict_audio(as_float, rate) == from_file


def test_threshold_keeps_only_stronger_calls(bundled_model, input_path):
    everything = bundled_model.predict_file(input_path("eptser"))
    strong = bundled_model.predict_file(input_path("eptser"), threshold=0.5)
    assert 0 < len(strong) < len(everything)
    assert set(strong) <= set(everything)
    assert all(d.det_prob >= 0.5 for d in strong)
    assert all(d in strong for d in everything if d.det_prob > 0.5005)


def test_model_identity(bundled_model):
    assert bundled_model.name == "BatDetect2"
    assert bundled_model.version == "1.3.1"
    assert len(bundled_model.classes) == 17
    assert bundled_model.classes[1] == "Eptesicus serotinus"
    assert bundled_model.samplerate_hz == 256_000
    assert bundled_model.default_threshold == 0.01


@pytest.mark.parametrize("tile_columns", [None, 200, 64])
def test_tiling_does_not_change_detections(bundled_model, model_dir, input_path, tile_columns):
    """The encoder, the decoder and the head run on tiles by default; the whole width, or much
    smaller tiles (64: narrower than the encoder's halo), give the very same detections, down to
    the weakest peaks batdetect2 would return (threshold 0)."""
    other = BatDetect2Onnx.load(model_dir, SessionSettings(threads=1, tile_columns=tile_columns))
    for threshold in (None, 0.0):
        assert other.predict_file(input_path("long"), threshold=threshold) == (
            bundled_model.predict_file(input_path("long"), threshold=threshold)
        )


def test_tiles_off_the_pooling_stride_are_refused(model_dir):
    with pytest.raises(ValueError, match="tile_columns must be a positive multiple of 8"):
        BatDetect2Onnx.load(model_dir, SessionSettings(tile_columns=1020))
