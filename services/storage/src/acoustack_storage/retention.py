"""Retention (PARITY 26): saved recordings are kept within an age limit, and the disk they are on
keeps a free-space floor, so a device left for months records on instead of filling up. The
recordings with the most confident detections of each species are never deleted by retention.
What a killed run leaves behind is cleaned up: half-written copies, and files of recordings the
store had already marked deleted. Files the store does not know are counted, never touched.

On by default: a card that fills stops the device for good, the complaint users of every peer
raise most. The shipped floor (``file_management.keep_free_mb``, above the recorder's own
``recording.min_free_disk_mb``) deletes the least valuable saved recordings first (no detection,
then the lowest best score, the oldest first among equals) and never the best of each species
(``keep_best_per_species``). Each run is recorded (``retention_runs``), so the heartbeat and
`acoustack status` say what was deleted and why. Domain logic on storage's repository, with no
transport; the ``manage_files`` task runs it before filing, so that filing finds room.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from acoustack import schema
from acoustack.errors import InvalidArgumentError, NotFoundError
from acoustack.v1 import types_pb2 as pb
from acoustack_storage.repository import (
    MAX_LIMIT,
    PostgresStore,
    RecordingFilter,
    RetentionRun,
    StoredRecording,
    tag_best_confidences,
)

log = logging.getLogger(__name__)

MB = 1024 * 1024
# A copy younger than this may be one a file-management run is making now; older ones were left by
# a run killed at its hard time limit (minutes at most).
ABANDONED_COPY_AGE_S = 3600.0
# Recordings read per query; with their model outputs when ranking species.
PAGE = 1000


@dataclass(frozen=True)
class RetentionPolicy:
    max_age_days: float = 0.0  # 0: kept for ever
    keep_free_mb: int = 0  # 0: nothing deleted for space
    keep_best_per_species: int = 0
    species_tag_key: str = "species"

    @property
    def deletes(self) -> bool:
        return self.max_age_days > 0 or self.keep_free_mb > 0


@dataclass
class RetentionReport:
    deleted_for_age: int = 0
    deleted_for_space: int = 0
    kept_as_best: int = 0
    abandoned_copies_removed: int = 0
    # Files of recordings the store had marked deleted (a run killed between the two steps).
    deleted_leftovers_removed: int = 0
    # .wav files under the destination the store knows nothing of: counted, never touched.
    unknown_files: int = 0
    free_mb: float | None = None
    # How far below keep_free_mb the disk stayed because nothing deletable was left.
    short_of_free_mb: float = 0.0
    # The highest best-detection score among the recordings deleted for space.
    highest_deleted_score: float | None = None


# Runs are kept a week (``record_retention_run``): the longest window a summary can cover.
MAX_WINDOW_S = 7 * 86400.0
DEFAULT_WINDOW_S = 86400.0


def retention_state(
    repository: PostgresStore, window_s: float, now: dt.datetime | None = None
) -> pb.RetentionState:
    """The last run and the window's deletions, as the contract gives them (0: a day)."""
    if not 0 <= window_s <= MAX_WINDOW_S:  # NaN fails both
        raise InvalidArgumentError(
            f"window_s: {window_s!r} is outside 0..{MAX_WINDOW_S:.0f} s (runs are kept 7 days; "
            "0 means 24 hours)"
        )
    window_s = window_s or DEFAULT_WINDOW_S
    summary = repository.retention_summary((now or _utcnow()) - dt.timedelta(seconds=window_s))
    if summary is None:
        raise NotFoundError("retention has not run yet (it runs with each file-management run)")
    last = summary.last
    state = pb.RetentionState(
        destination=last.destination,
        max_age_days=last.max_age_days,
        keep_free_mb=last.keep_free_mb,
        keep_best_per_species=last.keep_best_per_species,
        free_mb=-1.0 if last.free_mb is None else last.free_mb,
        short_of_free_mb=last.short_of_free_mb,
        kept_as_best=last.kept_as_best,
        window_s=window_s,
        deleted_for_age=summary.deleted_for_age,
        deleted_for_space=summary.deleted_for_space,
        highest_deleted_score=(
            -1.0 if summary.highest_deleted_score is None else summary.highest_deleted_score
        ),
    )
    state.last_run_at.FromDatetime(last.ran_at)
    return state


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class PlannedDeletion:
    recording: schema.Recording
    reason: str
    due_at: dt.datetime | None  # None: it would go at the next run


@dataclass
class RetentionPlan:
    enabled: bool
    free_mb: float | None = None
    kept_as_best: int = 0
    next: list[PlannedDeletion] = field(default_factory=list)


class Retention:
    def __init__(
        self,
        repository: PostgresStore,
        destination: Path,
        policy: RetentionPolicy,
        *,
        free_bytes: Callable[[Path], int] = free_bytes,
        now: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.repository = repository
        self.destination = Path(destination)
        self.policy = policy
        self.free_bytes = free_bytes
        self.now = now

    def run(self, *, remove_abandoned_copies: bool = True) -> RetentionReport:
        ran_at = self.now()
        report = RetentionReport()
        if remove_abandoned_copies:
            report.abandoned_copies_removed = self.remove_abandoned_copies()
            removed, unknown = self.remove_deleted_leftovers()
            report.deleted_leftovers_removed, report.unknown_files = removed, unknown
        if self.policy.deletes:
            self._apply_policy(report)
        self.repository.record_retention_run(
            RetentionRun(
                ran_at=ran_at,
                destination=str(self.destination),
                max_age_days=self.policy.max_age_days,
                keep_free_mb=self.policy.keep_free_mb,
                keep_best_per_species=self.policy.keep_best_per_species,
                deleted_for_age=report.deleted_for_age,
                deleted_for_space=report.deleted_for_space,
                kept_as_best=report.kept_as_best,
                free_mb=report.free_mb,
                short_of_free_mb=report.short_of_free_mb,
                highest_deleted_score=report.highest_deleted_score,
            )
        )
        return report

    def _apply_policy(self, report: RetentionReport) -> None:
        ranked: list[set[uuid.UUID]] = []

        def protected() -> set[uuid.UUID]:
            # Ranking reads every saved recording's outputs: only done when something may go.
            if not ranked:
                keep = self.policy.keep_best_per_species
                ranked.append(self.best_per_species() if keep else set())
                report.kept_as_best = len(ranked[0])
            return ranked[0]

        if self.policy.max_age_days > 0:
            cutoff = self.now() - dt.timedelta(days=self.policy.max_age_days)
            for entry in self._saved(started_before=cutoff):
                if entry.recording.id not in protected():
                    self._delete(entry.recording)
                    report.deleted_for_age += 1
        if self.policy.keep_free_mb > 0 and self.destination.exists():
            self._keep_free(protected, report)
        if report.deleted_for_age or report.deleted_for_space:
            log.info(
                "retention deleted %d saved recording(s) past %g days and %d for disk space, "
                "the least valuable first (best detection score up to %s; %d kept as the best of "
                "their species)",
                report.deleted_for_age,
                self.policy.max_age_days,
                report.deleted_for_space,
                "none"
                if report.highest_deleted_score is None
                else f"{report.highest_deleted_score:.2f}",
                report.kept_as_best,
            )

    def next_deletions(self, limit: int = 10) -> RetentionPlan:
        """What retention would delete next, in the order a run would, without deleting anything:
        each recording with why (past the age limit, for disk space now) or when (the day it
        passes the age limit, or once free space falls under the floor)."""
        plan = RetentionPlan(enabled=self.policy.deletes)
        if self.destination.exists():
            plan.free_mb = self.free_bytes(self.destination) / MB
        if not self.policy.deletes:
            return plan
        short_of_space = (
            self.policy.keep_free_mb > 0
            and plan.free_mb is not None
            and (plan.free_mb < self.policy.keep_free_mb)
        )
        protected = self.best_per_species() if self.policy.keep_best_per_species else set()
        plan.kept_as_best = len(protected)
        cutoff = (
            self.now() - dt.timedelta(days=self.policy.max_age_days)
            if self.policy.max_age_days > 0
            else None
        )
        planned: set[uuid.UUID] = set()

        def plan_to_delete(recording: schema.Recording, reason: str, due=None) -> bool:
            """Add one; whether the plan is full."""
            planned.add(recording.id)
            plan.next.append(PlannedDeletion(recording, reason, due))
            return len(plan.next) >= limit

        # In the order a run deletes: past the age limit (oldest first), then for space (the
        # least valuable first).
        if cutoff is not None:
            for entry in self._saved(started_before=cutoff):
                if entry.recording.id not in protected and plan_to_delete(
                    entry.recording, f"older than {self.policy.max_age_days:g} days"
                ):
                    return plan
        floor = self.policy.keep_free_mb
        if floor > 0:
            for recording, value in self._saved_least_valuable_first():
                if recording.id in protected or recording.id in planned:
                    continue
                worth = f"best detection {value:.2f}" if value > 0 else "no detection"
                reason = (
                    f"to keep {floor} MB free ({worth})"
                    if short_of_space
                    else f"when free space falls under {floor} MB ({worth})"
                )
                if plan_to_delete(recording, reason):
                    return plan
        elif cutoff is not None:
            for entry in self._saved():
                if entry.recording.id in protected or entry.recording.id in planned:
                    continue
                due = entry.recording.started_at + dt.timedelta(days=self.policy.max_age_days)
                if plan_to_delete(
                    entry.recording, f"when it is {self.policy.max_age_days:g} days old", due
                ):
                    return plan
        return plan

    def _keep_free(self, protected: Callable[[], set[uuid.UUID]], report: RetentionReport) -> None:
        floor = self.policy.keep_free_mb * MB
        free = self.free_bytes(self.destination)
        if free < floor:
            disk = os.stat(self.destination).st_dev
            for recording, value in self._saved_least_valuable_first():
                if recording.id in protected():
                    continue
                path = Path(recording.path)
                try:
                    elsewhere = os.stat(path).st_dev != disk
                except FileNotFoundError:
                    elsewhere = False  # gone already: the store should say so too
                if elsewhere:
                    continue  # deleting it would free nothing on this disk
                self._delete(recording)
                report.deleted_for_space += 1
                if value > 0:
                    report.highest_deleted_score = max(report.highest_deleted_score or 0, value)
                free = self.free_bytes(self.destination)
                if free >= floor:
                    break
        report.free_mb = free / MB
        if free < floor:
            report.short_of_free_mb = (floor - free) / MB
            log.error(
                "retention cannot keep %d MB free on %s (%.0f MB free): no saved recording is "
                "left to delete but the %d best of each species; lower "
                "file_management.keep_best_per_species or keep_free_mb, or free the disk",
                self.policy.keep_free_mb,
                self.destination,
                free / MB,
                self.policy.keep_best_per_species,
            )

    def best_per_species(self) -> set[uuid.UUID]:
        """Ids of the saved recordings under the destination that hold one of the
        ``keep_best_per_species`` most confident detections of a species (by the species tag's
        confidence, then the recording's best detection score). Ranked by Postgres from the
        confidences kept with each output; outputs stored before those were kept are decoded."""
        keep = self.policy.keep_best_per_species
        ranked, legacy = self.repository.most_confident_per_tag_value(
            self.policy.species_tag_key,
            keep,
            schema.RecordingStatus.SAVED,
            f"{str(self.destination).rstrip('/')}/",
        )
        candidates: dict[str, list[tuple[float, float, uuid.UUID]]] = {}
        for species, confidence, score, recording_id in ranked:
            candidates.setdefault(species, []).append((confidence, score, recording_id))
        for recording_id, document in legacy:
            output = pb.ModelOutput.FromString(document)
            best_score = max((d.detection_score for d in output.detections), default=0.0)
            for (key, species), confidence in tag_best_confidences(output).items():
                if key == self.policy.species_tag_key:
                    candidates.setdefault(species, []).append(
                        (confidence, best_score, recording_id)
                    )
        kept: set[uuid.UUID] = set()
        for items in candidates.values():
            best: dict[uuid.UUID, tuple[float, float]] = {}
            for confidence, score, recording_id in items:  # one entry per recording
                best[recording_id] = max(
                    best.get(recording_id, (confidence, score)), (confidence, score)
                )
            ordered = sorted(best.items(), key=lambda item: (-item[1][0], -item[1][1], item[0]))
            kept.update(recording_id for recording_id, _ in ordered[:keep])
        return kept

    def remove_abandoned_copies(self) -> int:
        """Half-written copies (``.name.wav.partial``) older than any run could still be making."""
        if not self.destination.exists():
            return 0
        removed = 0
        old = time.time() - ABANDONED_COPY_AGE_S
        for copy in self.destination.rglob(".*.partial"):
            try:
                if copy.stat().st_mtime < old:
                    copy.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        if removed:
            log.warning("removed %d half-written cop(ies) a killed run left behind", removed)
        return removed

    def remove_deleted_leftovers(self) -> tuple[int, int]:
        """Remove the files under the destination whose recording the store says is deleted
        (deleting updates the store first, so a run killed in between leaves the file); count
        the .wav files the store does not know (someone's own: never touched)."""
        if not self.destination.exists():
            return 0, 0
        files = sorted(
            str(p) for p in self.destination.rglob("*.wav") if not p.name.startswith(".")
        )
        removed = unknown = 0
        for start in range(0, len(files), MAX_LIMIT):
            entries, missing = self.repository.get_recordings_by_path(
                files[start : start + MAX_LIMIT], include_model_outputs=False
            )
            unknown += len(missing)
            live = {e.recording.path for e in entries if not _deleted(e.recording)}
            for path in {e.recording.path for e in entries if _deleted(e.recording)} - live:
                self._remove_file(Path(path))
                removed += 1
        if removed:
            log.warning("removed %d file(s) of recordings already marked deleted", removed)
        if unknown:
            log.info(
                "%d file(s) under %s are not recordings of this store", unknown, self.destination
            )
        return removed, unknown

    def _delete(self, recording: schema.Recording) -> None:
        # The store first, as file management does: a file outliving its record is harmless
        # and found again; a record outliving its file would be a recording that lies.
        self.repository.mark_recording_deleted(recording.id)
        self._remove_file(Path(recording.path))

    def _remove_file(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        # Empty date folders go too, up to the destination itself.
        folder = path.parent
        while folder != self.destination and self.destination in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent

    def _saved_least_valuable_first(self) -> Iterator[tuple[schema.Recording, float]]:
        """Saved recordings under the destination with their best detection score, the least
        valuable first, page by page."""
        prefix = f"{str(self.destination).rstrip('/')}/"
        after = None
        while True:
            page = self.repository.saved_by_value(prefix, after=after, limit=PAGE)
            yield from page
            if len(page) < PAGE:
                return
            last, value = page[-1]
            after = (value, last.started_at, last.id)

    def _saved(
        self, *, started_before: dt.datetime | None = None, with_outputs: bool = False
    ) -> Iterator[StoredRecording]:
        """Saved recordings under the destination, oldest first, page by page (a page may be
        re-read at its edge: the ids already given at the cursor's start time are skipped)."""
        cursor: dt.datetime | None = None
        given_at_cursor: set[uuid.UUID] = set()
        while True:
            page = self.repository.list_recordings(
                RecordingFilter(
                    statuses=(schema.RecordingStatus.SAVED,),
                    started_from=cursor,
                    started_to=started_before,
                    limit=PAGE,
                ),
                include_model_outputs=with_outputs,
            )
            fresh = [e for e in page if e.recording.id not in given_at_cursor]
            # Only what lies under the destination is retention's: recordings filed elsewhere
            # (under an earlier destination, by hand) are left alone.
            yield from (e for e in fresh if Path(e.recording.path).is_relative_to(self.destination))
            if len(page) < PAGE or not fresh:
                return
            last = page[-1].recording.started_at
            if last != cursor:
                given_at_cursor = set()
            given_at_cursor |= {e.recording.id for e in page if e.recording.started_at == last}
            cursor = last


def _deleted(recording: schema.Recording) -> bool:
    return recording.status is schema.RecordingStatus.DELETED
