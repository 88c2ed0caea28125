"""Output cleaners: what a model said, minus what is not worth keeping."""

from __future__ import annotations

from dataclasses import dataclass

from acoustack import schema

DEFAULT_THRESHOLD = 0.2  # acoupi's default for its threshold cleaner


@dataclass(frozen=True)
class ThresholdDetectionCleaner:
    """Drop detections scoring below the threshold, and tags below it on what remains."""

    detection_threshold: float = DEFAULT_THRESHOLD

    def __post_init__(self) -> None:
        if not 0.0 <= self.detection_threshold <= 1.0:
            raise ValueError(
                f"detection_threshold: {self.detection_threshold} is outside 0..1 "
                "(scores and confidences are probabilities)"
            )

    def _tags(self, tags: list[schema.PredictedTag]) -> list[schema.PredictedTag]:
        return [t for t in tags if t.confidence >= self.detection_threshold]

    def clean(self, model_output: schema.ModelOutput) -> schema.ModelOutput:
        kept = [
            d.model_copy(update={"tags": self._tags(d.tags)})
            for d in model_output.detections
            if d.detection_score >= self.detection_threshold
        ]
        return model_output.model_copy(
            update={"detections": kept, "tags": self._tags(model_output.tags)}
        )
