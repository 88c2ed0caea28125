"""Message builders: what goes into the outbox for a model output.

Content is JSON. Each message carries its own id, which the messenger sends along so that a receiver
can drop the duplicates at-least-once delivery may produce.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from acoustack import schema
from acoustack.components.cleaners import DEFAULT_THRESHOLD


def _detection_json(d: schema.Detection) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(d.id),
        "prediction_type": d.prediction_type.value,
        "detection_score": d.detection_score,
        "tags": [
            {"key": t.tag.key, "value": t.tag.value, "confidence": t.confidence} for t in d.tags
        ],
    }
    if d.box is not None:
        out["box"] = d.box.model_dump()
    return out


def _content(model_output: schema.ModelOutput, detections: list[schema.Detection]) -> str:
    return json.dumps(
        {
            "model_output_id": str(model_output.id),
            "recording_id": str(model_output.recording_id),
            "model": {"name": model_output.model_name, "version": model_output.model_version},
            "created_at": model_output.created_at.isoformat(),
            "tags": [
                {"key": t.tag.key, "value": t.tag.value, "confidence": t.confidence}
                for t in model_output.tags
            ],
            "detections": [_detection_json(d) for d in detections],
        },
        separators=(",", ":"),
    )


@dataclass(frozen=True)
class FullModelOutputMessageBuilder:
    """The whole model output, detections or not (a receiver learns the recording was processed)."""

    def build_message(self, model_output: schema.ModelOutput) -> schema.Message | None:
        return schema.Message(content=_content(model_output, model_output.detections))


@dataclass(frozen=True)
class DetectionThresholdMessageBuilder:
    """Only the detections scoring at least the threshold; no message when none does."""

    detection_threshold: float = DEFAULT_THRESHOLD

    def build_message(self, model_output: schema.ModelOutput) -> schema.Message | None:
        kept = [d for d in model_output.detections if d.detection_score >= self.detection_threshold]
        if not kept:
            return None
        return schema.Message(content=_content(model_output, kept))
