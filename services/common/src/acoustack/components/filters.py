"""Processing filters: whether a recording is worth running the model on."""

from __future__ import annotations

from dataclasses import dataclass

from acoustack import schema


@dataclass(frozen=True)
class AlwaysProcess:
    def should_process_recording(self, recording: schema.Recording) -> bool:
        return True


@dataclass(frozen=True)
class MinimumDurationFilter:
    """Skip recordings too short to hold a call (e.g. cut off by a fault)."""

    minimum_s: float = 0.1

    def should_process_recording(self, recording: schema.Recording) -> bool:
        return recording.duration_s >= self.minimum_s
