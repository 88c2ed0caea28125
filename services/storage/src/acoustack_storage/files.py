"""File management (DESIGN, a recording's life, step 5): the components the shared template
``acoustack.tasks.generate_file_management_task`` is built from, over storage's own repository.

No transport in here: the Celery task (``tasks.py``) only reads the program's configuration and
calls ``build_file_management_task``.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acoustack import convert, schema
from acoustack.program_config import (
    DetectionConfig,
    FileManagementConfig,
    parse_duty_cycle,
    read_section,
)
from acoustack.tasks import (
    RecordingManagementCondition,
    RecordingSavingFilter,
    RecordingSavingManager,
    generate_file_management_task,
)
from acoustack.time_windows import DailyWindows, Site, SunWindow, time_zone
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
        self._sites: dict[uuid.UUID, Site | None] = {}

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

    def site_of(self, recording: schema.Recording) -> Site | None:
        """Where the recording's deployment is (for sun windows); looked up once per deployment."""
        if recording.deployment_id not in self._sites:
            deployment = self.repository.get_deployment(recording.deployment_id)
            self._sites[recording.deployment_id] = Site.of(deployment)
        return self._sites[recording.deployment_id]

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
    """Files a recording under destination/YYYY/MM/DD/ by its start (UTC). With a time format the
    file is named <start, formatted>-<source>-<short id>.wav (never two alike); without one it
    keeps the name it had in the temporary area."""

    destination: Path
    time_format: str | None = None

    def save_recording(
        self, recording: schema.Recording, model_outputs: Sequence[schema.ModelOutput]
    ) -> Path:
        day = recording.started_at.astimezone(dt.UTC)
        return (
            self.destination
            / f"{day:%Y}"
            / f"{day:%m}"
            / f"{day:%d}"
            / file_name(recording, self.time_format)
        )


def file_name(recording: schema.Recording, time_format: str | None) -> str:
    if time_format is None:
        return Path(recording.path).name
    started = recording.started_at.astimezone(dt.UTC).strftime(time_format)
    # A format may hold a path separator; a file name must not.
    started = started.replace("/", "-")
    return f"{started}-{recording.source_id}-{recording.id.hex[:8]}.wav"


@dataclass(frozen=True)
class IdManager:
    """Files a recording as destination/<its id>.wav."""

    destination: Path

    def save_recording(
        self, recording: schema.Recording, model_outputs: Sequence[schema.ModelOutput]
    ) -> Path:
        return self.destination / f"{recording.id}.wav"


def best_detection_score(model_outputs: Sequence[schema.ModelOutput]) -> float | None:
    scores = [d.detection_score for o in model_outputs for d in o.detections]
    return max(scores) if scores else None


@dataclass(frozen=True)
class ConfidenceFolderManager:
    """Files a recording by its most confident detection: at least ``confident`` into
    confident/YYYY/MM/DD, at least ``unconfident`` into unconfident/YYYY/MM/DD (the likely false
    negatives worth a listen); anything less is left to the next manager."""

    destination: Path
    confident: float
    unconfident: float
    time_format: str | None = None

    def save_recording(
        self, recording: schema.Recording, model_outputs: Sequence[schema.ModelOutput]
    ) -> Path | None:
        best = best_detection_score(model_outputs)
        if best is None or best < self.unconfident:
            return None
        folder = "confident" if best >= self.confident else "unconfident"
        return DateFolderManager(self.destination / folder, self.time_format).save_recording(
            recording, model_outputs
        )


@dataclass(frozen=True)
class DetectionThresholdFilter:
    """Keeps a recording with at least one detection scoring ``threshold`` or more."""

    threshold: float

    def should_save_recording(
        self, recording: schema.Recording, model_outputs: Sequence[schema.ModelOutput]
    ) -> bool:
        return any(d.detection_score >= self.threshold for o in model_outputs for d in o.detections)


@dataclass(frozen=True)
class DailyWindowsFilter:
    """Keeps recordings that started inside the daily windows (local time, wrapping midnight)."""

    windows: DailyWindows

    def should_save_recording(
        self, recording: schema.Recording, model_outputs: Sequence[schema.ModelOutput]
    ) -> bool:
        return bool(self.windows.check(recording.started_at))


@dataclass(frozen=True)
class DutyCycleFilter:
    """Keeps recordings that started in the first ``minutes`` of every ``period_minutes``,
    counted from local midnight: 5 every 30 keeps :00–:05 and :30–:35."""

    minutes: int
    period_minutes: int
    timezone: str = "UTC"

    def should_save_recording(
        self, recording: schema.Recording, model_outputs: Sequence[schema.ModelOutput]
    ) -> bool:
        local = recording.started_at.astimezone(time_zone(self.timezone))
        since_midnight = local.hour * 60 + local.minute + local.second / 60
        return since_midnight % self.period_minutes < self.minutes


@dataclass(frozen=True)
class SunWindowFilter:
    """Keeps recordings that started around a sun event at their deployment's coordinates."""

    window: SunWindow
    site_of: Callable[[schema.Recording], Site | None]

    def should_save_recording(
        self, recording: schema.Recording, model_outputs: Sequence[schema.ModelOutput]
    ) -> bool:
        return bool(self.window.check(recording.started_at, self.site_of(recording)))


@dataclass(frozen=True)
class TagFilter:
    """Keeps recordings with a detection (or a whole-recording tag) carrying any of these
    key=value tags with at least ``min_confidence``."""

    tags: frozenset[tuple[str, str]]
    min_confidence: float = 0.0

    def should_save_recording(
        self, recording: schema.Recording, model_outputs: Sequence[schema.ModelOutput]
    ) -> bool:
        for output in model_outputs:
            predicted = [*output.tags, *(t for d in output.detections for t in d.tags)]
            for tag in predicted:
                if (tag.tag.key, tag.tag.value) in self.tags and (
                    tag.confidence >= self.min_confidence
                ):
                    return True
        return False


def processed_by_required_models(detection: DetectionConfig) -> RecordingManagementCondition:
    """A recording is processed when `detection.model` has stored its output (any output not
    from an extra model: a model server names itself) and so has every required extra model, by
    name. Outputs of models that are not required are kept whenever they arrive."""

    def processed(recording: schema.Recording, model_outputs: Sequence[schema.ModelOutput]) -> bool:
        return detection.is_processed({o.model_name for o in model_outputs})

    return processed


def file_management_section(program_config: Mapping[str, Any] | None) -> FileManagementConfig:
    """The program's ``file_management`` section, or its defaults when the program has none.
    Raises InvalidArgumentError naming the field when the section is bad."""
    return read_section(program_config, "file_management", FileManagementConfig) or (
        FileManagementConfig()
    )


def build_file_management_task(
    store: RepositoryStore,
    program_config: Mapping[str, Any] | None,
    temp_dirs: Path | Sequence[Path],
) -> Callable[[], None]:
    """The template, configured by the program's ``file_management`` section (defaults when the
    program has none). Raises InvalidArgumentError naming the field when the section is bad."""
    config = file_management_section(program_config)
    conditions: list[RecordingManagementCondition] = []
    detection = read_section(program_config, "detection", DetectionConfig)
    if detection is not None:
        conditions.append(processed_by_required_models(detection))
    return generate_file_management_task(
        store,
        saving_managers(config),
        logger=log,
        file_filters=[] if config.save_all else saving_filters(config, store.site_of),
        management_conditions=conditions,
        tmp_path=temp_dirs,
    )


def saving_filters(
    config: FileManagementConfig, site_of: Callable[[schema.Recording], Site | None]
) -> list[RecordingSavingFilter]:
    """The filters the section sets (a recording any one of them accepts is kept)."""
    filters: list[RecordingSavingFilter] = []
    if config.saving_threshold is not None:
        filters.append(DetectionThresholdFilter(config.saving_threshold))
    if daily := DailyWindows.from_text(config.save_daily_windows, config.save_timezone):
        filters.append(DailyWindowsFilter(daily))
    if sun := SunWindow.from_text(config.save_sun_window):
        filters.append(SunWindowFilter(sun, site_of))
    duty_cycle = parse_duty_cycle(config.save_duty_cycle)
    if duty_cycle is not None:
        filters.append(DutyCycleFilter(*duty_cycle, timezone=config.save_timezone))
    if config.save_tags:
        pairs = frozenset(
            (key.strip(), value.strip())
            for key, _, value in (pair.partition("=") for pair in config.save_tags)
        )
        filters.append(TagFilter(pairs, config.save_tags_threshold))
    return filters


def saving_managers(config: FileManagementConfig) -> list[RecordingSavingManager]:
    destination = Path(config.destination)
    managers: dict[str, RecordingSavingManager] = {
        "confidence_folders": ConfidenceFolderManager(
            destination,
            config.confident_threshold,
            config.unconfident_threshold,
            config.file_name_time_format,
        ),
        "date_folders": DateFolderManager(destination, config.file_name_time_format),
        "id": IdManager(destination),
    }
    return [managers[name] for name in config.saving_managers]


def build_retention(
    repository: PostgresStore, program_config: Mapping[str, Any] | None
) -> Retention:
    """Retention as the program's ``file_management`` section sets it (off by default)."""
    config = file_management_section(program_config)
    policy = RetentionPolicy(
        max_age_days=config.retention_days,
        keep_free_mb=config.keep_free_mb,
        keep_best_per_species=config.keep_best_per_species,
    )
    return Retention(repository, Path(config.destination), policy)
