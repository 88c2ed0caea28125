"""An in-process AudioModel used as a pipeline Model: ``run(recording)`` reads the recording's file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from acoustack import schema
from acoustack.errors import FailedPreconditionError
from acoustack_detector.audio_model import AudioModel


@dataclass
class LocalModel:
    audio_model: AudioModel
    # A known recording and the least the model must find in it: the self-check.
    check_file: Path | None = None
    check_min_detections: int = 1

    @property
    def name(self) -> str:
        return self.audio_model.name

    @property
    def version(self) -> str:
        return self.audio_model.version

    def run(self, recording: schema.Recording) -> schema.ModelOutput:
        detections = self.audio_model.detect_file(Path(recording.path), recording.time_expansion)
        return schema.ModelOutput(
            recording_id=recording.id,
            model_name=self.name,
            model_version=self.version,
            detections=detections,
        )

    def check(self) -> None:
        if self.check_file is None:
            return
        found = self.audio_model.detect_file(self.check_file)
        if len(found) < self.check_min_detections:
            raise FailedPreconditionError(
                f"model {self.name} {self.version} found {len(found)} detections in "
                f"{self.check_file.name}, expected at least {self.check_min_detections}",
                help="the model file may be damaged: rebuild it (make model)",
            )
