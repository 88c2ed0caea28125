"""The detection pipeline against a real storage service and Postgres, with real models and files."""

from __future__ import annotations

import json

import pytest

from acoustack.clients import StoreClient
from acoustack.components import (
    DetectionThresholdMessageBuilder,
    MinimumDurationFilter,
    ThresholdDetectionCleaner,
)
from acoustack.errors import FailedPreconditionError
from acoustack_detector.local_model import LocalModel
from acoustack_detector.pipeline import DetectionPipeline, Outcome
from acoustack_detector.remote_model import RemoteModel


@pytest.fixture
def store(storage_target):
    with StoreClient(storage_target) as client:
        yield client


@pytest.fixture
def registered(store, recordings_root, make_recording):
    """A real recording on the volume, registered with storage as the recorder would."""
    deployment = store.start_deployment("meadow", 52.2, 0.12)
    recording = make_recording(next(recordings_root.glob("*.wav")), deployment.id)
    store.store_recording(recording)
    return recording


def pipeline(store, model, **components) -> DetectionPipeline:
    return DetectionPipeline(
        store=store,
        model=model,
        output_cleaners=[ThresholdDetectionCleaner(0.2)],
        message_builders=[DetectionThresholdMessageBuilder(0.5)],
        **components,
    )


def test_a_recording_goes_through_and_is_stored_once(store, registered, band_energy_model):
    detect = pipeline(store, LocalModel(band_energy_model))
    first = detect.process(registered.id)
    assert first.outcome is Outcome.STORED
    assert first.detections >= 3
    stored = store.list_detections(model_name="energy-band")
    assert len(stored) == first.detections
    assert all(h.detection.detection_score >= 0.2 for h in stored)  # cleaned before storing
    messages = store.get_unsent_messages()
    assert len(messages) == first.messages == 1
    sent = json.loads(messages[0].content)["detections"]
    assert sent and all(d["detection_score"] >= 0.5 for d in sent)

    # The task is delivered again (a worker died after storing): nothing new is stored.
    again = detect.process(registered.id)
    assert again.outcome is Outcome.ALREADY_STORED
    assert again.model_output_id == first.model_output_id
    assert len(store.list_detections(model_name="energy-band")) == first.detections
    assert len(store.get_unsent_messages()) == 1


def test_the_recording_handed_over_is_used_as_is_and_still_stored_once(
    store, registered, band_energy_model
):
    """The recorder hands the recording over with the task: the same output as with a lookup;
    a second run with it (a duplicate hand-over) stores nothing new."""
    detect = pipeline(store, LocalModel(band_energy_model))
    first = detect.process(registered.id, registered)
    assert first.outcome is Outcome.STORED
    looked_up = pipeline(store, LocalModel(band_energy_model)).model.run(registered)
    assert first.detections == len(ThresholdDetectionCleaner(0.2).clean(looked_up).detections)
    again = detect.process(registered.id, registered)
    assert again.outcome is Outcome.ALREADY_STORED
    assert again.model_output_id == first.model_output_id
    assert len(store.list_detections(model_name="energy-band")) == first.detections
    assert len(store.get_unsent_messages()) == 1


def test_a_remote_model_server_runs_in_the_same_pipeline(store, registered, example_server):
    result = pipeline(store, RemoteModel(example_server)).process(registered.id)
    assert result.outcome is Outcome.STORED
    entry = store.get_recording(registered.id, include_model_outputs=True)
    assert [o.model_name for o in entry.model_outputs] == ["energy-band"]
    assert len(entry.model_outputs[0].detections) == result.detections


def test_a_filtered_recording_stores_nothing(store, registered, band_energy_model):
    detect = pipeline(
        store, LocalModel(band_energy_model), processing_filters=[MinimumDurationFilter(5.0)]
    )
    assert detect.process(registered.id).outcome is Outcome.FILTERED_OUT
    assert store.get_recording(registered.id, include_model_outputs=True).model_outputs == []


def test_a_failing_model_leaves_nothing_half_written(store, registered, band_energy_model):
    class Broken(LocalModel):
        def run(self, recording):
            raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        pipeline(store, Broken(band_energy_model)).process(registered.id)
    assert store.get_recording(registered.id, include_model_outputs=True).model_outputs == []
    assert store.get_unsent_messages() == []
    # The next attempt (the task is retried) goes through.
    assert (
        pipeline(store, LocalModel(band_energy_model)).process(registered.id).outcome
        is Outcome.STORED
    )


def test_the_self_check_says_what_is_wrong(band_energy_model, tmp_path):
    silent = tmp_path / "silent.wav"
    import wave

    with wave.open(str(silent), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(384_000)
        wav.writeframes(b"\0\0" * 384_000)
    with pytest.raises(
        FailedPreconditionError, match="found 0 detections in silent.wav, expected at least 1"
    ):
        LocalModel(band_energy_model, check_file=silent).check()
