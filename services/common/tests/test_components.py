"""The built-in components (PARITY 17–20): threshold cleaner, processing filters, message builders."""

from __future__ import annotations

import json
import uuid

import pytest

from acoustack import schema
from acoustack.components import (
    AlwaysProcess,
    DetectionThresholdMessageBuilder,
    FullModelOutputMessageBuilder,
    MinimumDurationFilter,
    ThresholdDetectionCleaner,
    types,
)
from acoustack.testing import factories


def output_with_scores(*scores: float, tag_confidences=(0.9, 0.1)) -> schema.ModelOutput:
    return schema.ModelOutput(
        recording_id=uuid.uuid4(),
        model_name="batdetect2",
        model_version="1.3.1",
        detections=[
            schema.Detection(
                box=schema.BoundingBox(
                    start_time_s=0.1 * i,
                    end_time_s=0.1 * i + 0.01,
                    low_freq_hz=30e3,
                    high_freq_hz=60e3,
                ),
                detection_score=score,
                tags=[
                    schema.PredictedTag(tag=schema.Tag(key="species", value=f"sp{j}"), confidence=c)
                    for j, c in enumerate(tag_confidences)
                ],
            )
            for i, score in enumerate(scores)
        ],
    )


def test_the_threshold_cleaner_drops_weak_detections_and_tags_at_0_2_by_default():
    output = output_with_scores(0.05, 0.2, 0.7, tag_confidences=(0.9, 0.19, 0.2))
    cleaned = ThresholdDetectionCleaner().clean(output)
    assert [d.detection_score for d in cleaned.detections] == [0.2, 0.7]
    assert [[t.confidence for t in d.tags] for d in cleaned.detections] == [[0.9, 0.2], [0.9, 0.2]]
    # The input is left as it was: the task may still log or store the raw output.
    assert len(output.detections) == 3
    assert cleaned.id == output.id


def test_a_threshold_outside_0_1_is_refused_with_its_name():
    with pytest.raises(ValueError, match="detection_threshold: 1.5 is outside 0..1"):
        ThresholdDetectionCleaner(1.5)


def test_filters():
    recording = factories.recording(uuid.uuid4(), duration_s=0.05)
    assert AlwaysProcess().should_process_recording(recording)
    assert not MinimumDurationFilter(0.1).should_process_recording(recording)
    assert MinimumDurationFilter(0.01).should_process_recording(recording)


def test_the_full_builder_sends_everything_even_an_empty_output():
    output = output_with_scores(0.1, 0.9)
    message = FullModelOutputMessageBuilder().build_message(output)
    content = json.loads(message.content)
    assert content["model_output_id"] == str(output.id)
    assert content["recording_id"] == str(output.recording_id)
    assert [d["detection_score"] for d in content["detections"]] == [0.1, 0.9]
    assert content["detections"][1]["box"]["low_freq_hz"] == 30e3
    assert content["detections"][1]["tags"][0] == {
        "key": "species",
        "value": "sp0",
        "confidence": 0.9,
    }
    empty = FullModelOutputMessageBuilder().build_message(output_with_scores())
    assert json.loads(empty.content)["detections"] == []


def test_the_threshold_builder_sends_only_what_passes_and_nothing_when_empty():
    builder = DetectionThresholdMessageBuilder(0.5)
    message = builder.build_message(output_with_scores(0.1, 0.5, 0.9))
    assert [d["detection_score"] for d in json.loads(message.content)["detections"]] == [0.5, 0.9]
    assert builder.build_message(output_with_scores(0.1, 0.49)) is None
    assert builder.build_message(output_with_scores()) is None


def test_the_builtins_satisfy_the_interfaces():
    assert isinstance(ThresholdDetectionCleaner(), types.ModelOutputCleaner)
    assert isinstance(AlwaysProcess(), types.ProcessingFilter)
    assert isinstance(FullModelOutputMessageBuilder(), types.MessageBuilder)
    assert isinstance(DetectionThresholdMessageBuilder(), types.MessageBuilder)
