"""Builders of valid schema objects for tests: override only what a test is about."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

from acoustack import schema

SPECIES = ("Myotis mystacinus", "Eptesicus serotinus", "Rhinolophus ferrumequinum", "Pipistrellus")


def recording(deployment_id: uuid.UUID | str, **overrides: Any) -> schema.Recording:
    rid = overrides.pop("id", None) or uuid.uuid4()
    values: dict[str, Any] = {
        "id": rid,
        "deployment_id": deployment_id,
        "device_id": "device-1",
        "source_id": "mic-0",
        "path": f"/recordings/tmp/{rid}.wav",
        "started_at": dt.datetime(2026, 6, 1, 21, 30, tzinfo=dt.UTC),
        "duration_s": 3.0,
        "capture_samplerate_hz": 384_000,
        "channels": 1,
        "time_expansion": 1.0,
    }
    values.update(overrides)
    return schema.Recording.model_validate(values)


def detection(
    rng: random.Random | None = None, *, n_tags: int = 5, **overrides: Any
) -> schema.Detection:
    rng = rng or random.Random(0)
    start = rng.uniform(0, 2.9)
    low = rng.uniform(15_000, 60_000)
    values: dict[str, Any] = {
        "box": schema.BoundingBox(
            start_time_s=start,
            end_time_s=start + rng.uniform(0.002, 0.02),
            low_freq_hz=low,
            high_freq_hz=low + rng.uniform(5_000, 40_000),
        ),
        "detection_score": rng.random(),
        "tags": [
            schema.PredictedTag(
                tag=schema.Tag(
                    key="species", value=SPECIES[i % len(SPECIES)] + ("" if i < 4 else f" {i}")
                ),
                confidence=rng.random(),
            )
            for i in range(n_tags)
        ],
    }
    values.update(overrides)
    return schema.Detection.model_validate(values)


def model_output(
    recording_id: uuid.UUID | str, n_detections: int = 3, *, seed: int = 0, **overrides: Any
) -> schema.ModelOutput:
    rng = random.Random(seed)
    values: dict[str, Any] = {
        "recording_id": recording_id,
        "model_name": "batdetect2",
        "model_version": "1.3.1",
        "detections": [detection(rng) for _ in range(n_detections)],
    }
    values.update(overrides)
    return schema.ModelOutput.model_validate(values)


def species_calls(
    recording_id: uuid.UUID | str,
    calls: list[tuple[str, float]],
    *,
    detection_score: float | None = None,
    **overrides: Any,
) -> schema.ModelOutput:
    """A model output with one detection per (species, confidence), each tagged with that one
    species; its score is the confidence unless ``detection_score`` is given."""
    output = model_output(recording_id, n_detections=len(calls), **overrides)
    detections = [
        d.model_copy(
            update={
                "detection_score": confidence if detection_score is None else detection_score,
                "tags": [
                    schema.PredictedTag(
                        tag=schema.Tag(key="species", value=name), confidence=confidence
                    )
                ],
            }
        )
        for d, (name, confidence) in zip(output.detections, calls, strict=True)
    ]
    return output.model_copy(update={"detections": detections})
