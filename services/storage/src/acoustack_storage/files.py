"""File management (DESIGN, a recording's life, step 5): the components the shared template
``acoustack.tasks.generate_file_management_task`` is built from, over storage's own repository.

No transport in here: the Celery task (``worker.py``) only reads the program's configuration and
calls ``build_file_management_task``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acoustack import convert, schema
from acoustack.program_config import FileManagementConfig, read_section
from acoustack.tasks import RecordingManagementCondition, generate_file_management_task
from acoustack.v1 import types_pb2 as pb
from acoustack_storage.repository import MAX_LIMIT, PostgresStore
from acoustack_storage.retention import Retention, RetentionPolicy

log = logging.getLogger(__name__)


class RepositoryStore:
    """The part of the template's ``Store`` that file management calls, on the repository in
    this process (storage does not call itself over gRPC). Counts what it saved and deleted."""

    def __init__(self, repository: PostgresStore) -> None:
        self.repository = repository
        self.saved = 0
        self.deleted = 0

    def get_recordings_by_path(
        self, paths: Sequence[Path]
    ) -> list[tuple[schema.Recording, list[schema.ModelOutput]]]:
        found: list[tuple[schema.Recording, list[schema.ModelOutput]]] = []
        names = [str(p) for p in paths]
        for start in range(0, len(names), MAX_LIMIT):
            entries, _ = self.repository.get_recordings_by_path(names[start : start + MAX_LIMIT])
            for entry in entries:
                # Only a temporary recording is still to be managed: a deleted one may share the
                # path (paths are reused once deleted), and a failed one is left where it is.
                if entry.recording.status is not schema.RecordingStatus.TEMPORARY:
                    continue
                outputs = [
                    convert.model_output_from_proto(pb.ModelOutput.FromString(document))
                    for document in entry.model_output_documents
                ]
                found.append((entry.recording, outputs))
        return found

    def update_recording_path(self, recording: schema.Recording, new_path: Path) -> None:
        self.repository.update_recording_path(
            recording.id, str(new_path), schema.RecordingStatus.SAVED
        )
        self.saved += 1

    def mark_recording_deleted(self, recording: schema.Recording) -> None:
        self.repository.mark_recording_deleted(recording.id)
        self.deleted += 1


@dataclass(frozen=True)
class DateFolderManager:
    """Files a recording under destination/YYYY/MM/DD/<its file name>, by its start (UTC)."""

    destination: Path

    def save_recording(
        self, recording: schema.Recording, model_outputs: Sequence[schema.ModelOutput]
    ) -> Path:
        day = recording.started_at.astimezone(dt.UTC)
        return (
            self.destination / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}" / Path(recording.path).name
        )


@dataclass(frozen=True)
class DetectionThresholdFilter:
    """Keeps a recording with at least one detection scoring ``threshold`` or more."""

    threshold: float

    def should_save_recording(
        self, recording: schema.Recording, model_outputs: Sequence[schema.ModelOutput]
    ) -> bool:
        return any(d.detection_score >= self.threshold for o in model_outputs for d in o.detections)


def has_model_output(
    recording: schema.Recording, model_outputs: Sequence[schema.ModelOutput]
) -> bool:
    return bool(model_outputs)


def build_file_management_task(
    store: RepositoryStore,
    program_config: Mapping[str, Any] | None,
    temp_dir: Path,
) -> Callable[[], None]:
    """The template, configured by the program's ``file_management`` section (defaults when the
    program has none). Raises InvalidArgumentError naming the field when the section is bad."""
    section = read_section(program_config, "file_management", FileManagementConfig)
    config = section or FileManagementConfig()
    conditions: list[RecordingManagementCondition] = []
    if program_config and "detection" in program_config:
        # The model's name is the detector's business (a model server names itself), so wait
        # for any output rather than for a named model.
        conditions.append(has_model_output)
    filters = [] if config.save_all else [DetectionThresholdFilter(config.saving_threshold)]
    return generate_file_management_task(
        store,
        [DateFolderManager(Path(config.destination))],
        logger=log,
        file_filters=filters,
        management_conditions=conditions,
        tmp_path=temp_dir,
    )


def build_retention(
    repository: PostgresStore, program_config: Mapping[str, Any] | None
) -> Retention:
    """Retention as the program's ``file_management`` section sets it (off by default)."""
    section = read_section(program_config, "file_management", FileManagementConfig)
    config = section or FileManagementConfig()
    policy = RetentionPolicy(
        max_age_days=config.retention_days,
        keep_free_mb=config.keep_free_mb,
        keep_best_per_species=config.keep_best_per_species,
    )
    return Retention(repository, Path(config.destination), policy)
