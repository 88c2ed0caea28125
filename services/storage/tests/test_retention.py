"""Retention on real files and a real database: what goes for age, what goes for space and in what
order, which recordings are kept as the best of their species, and what is never touched."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
import uuid
from pathlib import Path

import pytest

from acoustack import convert, schema
from acoustack.celery_app import create_app
from acoustack.testing import factories
from acoustack_storage import retention as retention_module
from acoustack_storage.repository import PostgresStore
from acoustack_storage.retention import MB, Retention, RetentionPolicy
from acoustack_storage.tasks import register_manage_files_task

NOW = dt.datetime(2026, 9, 1, 12, 0, tzinfo=dt.UTC)
FILE_BYTES = MB  # each saved recording's size on disk


@pytest.fixture
def deployment(store: PostgresStore) -> schema.Deployment:
    return store.start_deployment(schema.Deployment(name="meadow", latitude=52.2, longitude=0.12))


@pytest.fixture
def destination(tmp_path) -> Path:
    path = tmp_path / "recordings"
    path.mkdir()
    return path


def saved_recording(
    store, deployment, destination, days_ago: float, *species: tuple[str, float], score=0.9
):
    """A saved recording filed in its date folder, with a detection per (species, confidence),
    each scored ``score``."""
    started = NOW - dt.timedelta(days=days_ago)
    rid = uuid.uuid4()
    path = destination / f"{started:%Y/%m/%d}" / f"{started:%Y%m%d_%H%M%S}-{rid.hex[:8]}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(FILE_BYTES))
    recording = factories.recording(
        deployment.id, id=rid, path=str(path), started_at=started, status="saved"
    )
    store.store_recording(recording)
    if species:
        output = factories.species_calls(rid, list(species), detection_score=score)
        store.store_model_output(convert.model_output_to_proto(output))
    return recording


def status(store, recording) -> schema.RecordingStatus:
    return store.get_recording(recording.id).recording.status


def disk_of(capacity_bytes: int):
    """A disk of this size holding what is under the destination: the real files decide what is
    free, so every deletion the test asks for must really remove its file."""

    def free(path: Path) -> int:
        used = sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
        return capacity_bytes - used

    return free


def test_saved_recordings_past_the_age_limit_are_deleted_with_their_files(
    store, deployment, destination
):
    old = saved_recording(store, deployment, destination, days_ago=40)
    recent = saved_recording(store, deployment, destination, days_ago=20)
    report = Retention(store, destination, RetentionPolicy(max_age_days=30), now=lambda: NOW).run()
    assert report.deleted_for_age == 1
    assert status(store, old) is schema.RecordingStatus.DELETED
    assert not Path(old.path).exists()
    assert not Path(old.path).parent.exists()  # its emptied date folder went too
    assert status(store, recent) is schema.RecordingStatus.SAVED
    assert Path(recent.path).exists()
    assert destination.exists()


def test_under_the_free_space_floor_the_oldest_go_first_and_only_as_many_as_needed(
    store, deployment, destination
):
    recordings = [
        saved_recording(store, deployment, destination, days_ago=d) for d in (5, 4, 3, 2, 1)
    ]
    # Two recordings' worth short of the floor, less half a file: two must go, not three.
    floor_mb = 4
    capacity = 5 * FILE_BYTES + floor_mb * MB - int(1.5 * FILE_BYTES)
    report = Retention(
        store,
        destination,
        RetentionPolicy(keep_free_mb=floor_mb),
        free_bytes=disk_of(capacity),
        now=lambda: NOW,
    ).run()
    assert report.deleted_for_space == 2
    assert [status(store, r) for r in recordings] == [schema.RecordingStatus.DELETED] * 2 + [
        schema.RecordingStatus.SAVED
    ] * 3
    assert [Path(r.path).exists() for r in recordings] == [False, False, True, True, True]
    assert report.free_mb >= floor_mb
    assert report.short_of_free_mb == 0


def test_the_best_of_each_species_are_kept_and_a_floor_out_of_reach_is_reported(
    store, deployment, destination, caplog
):
    best_pipistrelle = saved_recording(
        store, deployment, destination, 9, ("Pipistrellus pipistrellus", 0.95)
    )
    best_myotis = saved_recording(store, deployment, destination, 8, ("Myotis daubentonii", 0.6))
    weaker_pipistrelle = saved_recording(
        store, deployment, destination, 7, ("Pipistrellus pipistrellus", 0.7)
    )
    nothing = saved_recording(store, deployment, destination, 6)
    # Even deleting everything would not reach the floor.
    capacity = 4 * FILE_BYTES + MB
    with caplog.at_level(logging.ERROR):
        report = Retention(
            store,
            destination,
            RetentionPolicy(keep_free_mb=10, keep_best_per_species=1),
            free_bytes=disk_of(capacity),
            now=lambda: NOW,
        ).run()
    assert report.kept_as_best == 2
    assert status(store, best_pipistrelle) is schema.RecordingStatus.SAVED
    assert status(store, best_myotis) is schema.RecordingStatus.SAVED
    assert status(store, weaker_pipistrelle) is schema.RecordingStatus.DELETED
    assert status(store, nothing) is schema.RecordingStatus.DELETED
    assert report.short_of_free_mb == pytest.approx(10 - 3, abs=0.01)
    assert "keep_best_per_species" in caplog.text


def test_the_best_of_a_species_outlive_the_age_limit(store, deployment, destination):
    best = saved_recording(store, deployment, destination, 400, ("Nyctalus noctula", 0.99))
    plain = saved_recording(store, deployment, destination, 399, ("Nyctalus noctula", 0.5))
    Retention(
        store,
        destination,
        RetentionPolicy(max_age_days=30, keep_best_per_species=1),
        now=lambda: NOW,
    ).run()
    assert status(store, best) is schema.RecordingStatus.SAVED
    assert status(store, plain) is schema.RecordingStatus.DELETED


def test_nothing_outside_the_destination_and_nothing_with_retention_off_is_deleted(
    store, deployment, destination, tmp_path
):
    elsewhere = tmp_path / "archive"
    elsewhere.mkdir()
    outside = saved_recording(store, deployment, elsewhere, days_ago=400)
    inside = saved_recording(store, deployment, destination, days_ago=400)
    report = Retention(store, destination, RetentionPolicy(), now=lambda: NOW).run()
    assert (report.deleted_for_age, report.deleted_for_space) == (0, 0)
    assert status(store, inside) is schema.RecordingStatus.SAVED

    Retention(store, destination, RetentionPolicy(max_age_days=1), now=lambda: NOW).run()
    assert status(store, inside) is schema.RecordingStatus.DELETED
    assert status(store, outside) is schema.RecordingStatus.SAVED
    assert Path(outside.path).exists()


def test_an_abandoned_half_written_copy_is_removed_and_a_fresh_one_kept(store, destination):
    folder = destination / "2026" / "06" / "01"
    folder.mkdir(parents=True)
    abandoned, fresh = folder / ".a.wav.partial", folder / ".b.wav.partial"
    abandoned.write_bytes(b"RIFF")
    fresh.write_bytes(b"RIFF")
    two_hours_ago = time.time() - 7200
    os.utime(abandoned, (two_hours_ago, two_hours_ago))
    report = Retention(store, destination, RetentionPolicy()).run()
    assert report.abandoned_copies_removed == 1
    assert not abandoned.exists()
    assert fresh.exists()


def test_manage_files_applies_the_programs_retention_and_reports_it(
    store, deployment, destination, tmp_path
):
    old = saved_recording(store, deployment, destination, days_ago=10_000)
    app = create_app("amqp://guest:guest@127.0.0.1:1/unused")
    temp_dir = tmp_path / "shm"
    temp_dir.mkdir()
    manage_files = register_manage_files_task(app, lambda: store, temp_dir)
    config = {"file_management": {"destination": str(destination), "retention_days": 365}}
    result = manage_files(program_config=config)
    assert result["retention"]["deleted_for_age"] == 1
    assert status(store, old) is schema.RecordingStatus.DELETED

    bad = {"file_management": {"destination": str(destination), "retention_days": -1}}
    refused = manage_files(program_config=bad)
    assert refused["outcome"] == "rejected"
    assert "program_config.file_management.retention_days" in refused["reason"]


def test_retention_reads_page_after_page_including_ties_at_a_page_edge(
    store, deployment, destination, monkeypatch
):
    monkeypatch.setattr(retention_module, "PAGE", 2)
    # Two recordings share a start time across the first page's edge.
    recordings = [saved_recording(store, deployment, destination, d) for d in (50, 49, 49, 48, 47)]
    report = Retention(store, destination, RetentionPolicy(max_age_days=30), now=lambda: NOW).run()
    assert report.deleted_for_age == 5
    assert {status(store, r) for r in recordings} == {schema.RecordingStatus.DELETED}


def test_outputs_stored_before_tag_confidences_were_kept_still_rank(store, deployment, destination):
    """Outputs from before migration 0002 have no confidence columns: they are decoded instead."""
    old_best = saved_recording(store, deployment, destination, 9, ("Plecotus auritus", 0.9))
    newer = saved_recording(store, deployment, destination, 8, ("Plecotus auritus", 0.8))
    weaker = saved_recording(store, deployment, destination, 7, ("Plecotus auritus", 0.7))
    with store.connection() as conn:
        conn.execute(
            """UPDATE model_outputs SET tag_best_entries = NULL, tag_best_confidences = NULL
               WHERE recording_id = %s""",
            (old_best.id,),
        )
    policy = RetentionPolicy(max_age_days=1, keep_best_per_species=2)
    assert Retention(store, destination, policy, now=lambda: NOW).best_per_species() == {
        old_best.id,
        newer.id,
    }
    Retention(store, destination, policy, now=lambda: NOW).run()
    assert [status(store, r) for r in (old_best, newer, weaker)] == [
        schema.RecordingStatus.SAVED,
        schema.RecordingStatus.SAVED,
        schema.RecordingStatus.DELETED,
    ]


def test_files_of_deleted_recordings_go_and_files_the_store_does_not_know_stay(
    store, deployment, destination
):
    kept = saved_recording(store, deployment, destination, days_ago=3)
    # Deleting updates the store first: a run killed before the unlink leaves the file.
    leftover = saved_recording(store, deployment, destination, days_ago=2)
    store.mark_recording_deleted(leftover.id)
    stranger = destination / "2026" / "08" / "29" / "field-notes.wav"
    stranger.write_bytes(b"RIFF")
    report = Retention(store, destination, RetentionPolicy()).run()
    assert (report.deleted_leftovers_removed, report.unknown_files) == (1, 1)
    assert not Path(leftover.path).exists()
    assert Path(kept.path).exists()
    assert stranger.exists()
    assert status(store, kept) is schema.RecordingStatus.SAVED


def test_for_space_the_least_valuable_go_first_whatever_their_age(store, deployment, destination):
    """No detection first, then the lowest best score; among equals the oldest."""
    bat = ("Pipistrellus pipistrellus", 0.9)
    silent_new = saved_recording(store, deployment, destination, days_ago=1)
    silent_old = saved_recording(store, deployment, destination, days_ago=2)
    weak = saved_recording(store, deployment, destination, 0.5, bat, score=0.3)
    strong_old = saved_recording(store, deployment, destination, 30, bat, score=0.95)
    strong_new = saved_recording(store, deployment, destination, 0.1, bat, score=0.8)
    floor_mb = 4
    capacity = 5 * FILE_BYTES + floor_mb * MB - int(2.5 * FILE_BYTES)  # three must go
    report = Retention(
        store,
        destination,
        RetentionPolicy(keep_free_mb=floor_mb),
        free_bytes=disk_of(capacity),
        now=lambda: NOW,
    ).run()
    assert report.deleted_for_space == 3
    gone = {
        r.id
        for r in (silent_new, silent_old, weak, strong_old, strong_new)
        if status(store, r) is schema.RecordingStatus.DELETED
    }
    assert gone == {silent_old.id, silent_new.id, weak.id}
    assert report.highest_deleted_score == pytest.approx(0.3)
    assert Path(strong_old.path).exists() and Path(strong_new.path).exists()


def test_the_least_valuable_are_read_page_after_page(store, deployment, destination, monkeypatch):
    monkeypatch.setattr(retention_module, "PAGE", 2)
    bat = ("Myotis daubentonii", 0.9)
    # Ties in score and start time across pages' edges; the three silent ones must go.
    silent = [saved_recording(store, deployment, destination, days_ago=3) for _ in range(3)]
    scored = [saved_recording(store, deployment, destination, 3, bat, score=0.5) for _ in range(3)]
    capacity = 6 * FILE_BYTES + 1 * MB - int(2.5 * FILE_BYTES)
    report = Retention(
        store,
        destination,
        RetentionPolicy(keep_free_mb=1),
        free_bytes=disk_of(capacity),
        now=lambda: NOW,
    ).run()
    assert report.deleted_for_space == 3
    assert {status(store, r) for r in silent} == {schema.RecordingStatus.DELETED}
    assert {status(store, r) for r in scored} == {schema.RecordingStatus.SAVED}


def test_every_run_is_recorded_for_the_heartbeat_and_status_to_tell(store, deployment, destination):
    for days in (3, 2, 1):
        saved_recording(store, deployment, destination, days_ago=days)
    policy = RetentionPolicy(keep_free_mb=2, keep_best_per_species=5)
    one_short = disk_of(3 * FILE_BYTES + 2 * MB - FILE_BYTES // 2)
    Retention(store, destination, policy, free_bytes=one_short, now=lambda: NOW).run()
    later = NOW + dt.timedelta(minutes=2)
    Retention(store, destination, policy, free_bytes=disk_of(FILE_BYTES), now=lambda: later).run()

    summary = store.retention_summary(NOW - dt.timedelta(hours=24))
    assert summary.last.ran_at == later
    assert summary.last.destination == str(destination)
    assert summary.last.keep_free_mb == 2
    # The second run's disk holds less than the floor even once both recordings left are gone.
    assert summary.deleted_for_space == 3
    assert summary.last.short_of_free_mb > 0
    assert summary.last.free_mb == pytest.approx(1.0)
    # A window after both runs counts nothing, and still shows the last run.
    empty = store.retention_summary(later + dt.timedelta(seconds=1))
    assert (empty.deleted_for_space, empty.last.ran_at) == (0, later)


def test_the_plan_says_what_retention_would_delete_next_and_deletes_nothing(
    store, deployment, destination
):
    old = saved_recording(store, deployment, destination, 40, ("Myotis", 0.5))
    best = saved_recording(store, deployment, destination, 35, ("Myotis", 0.99))
    young = saved_recording(store, deployment, destination, 5, ("Myotis", 0.4))
    retention = Retention(
        store, destination, RetentionPolicy(max_age_days=30, keep_best_per_species=1),
        now=lambda: NOW,
    )  # fmt: skip
    plan = retention.next_deletions(limit=10)
    assert plan.enabled and plan.kept_as_best == 1
    assert [(p.recording.id, p.reason) for p in plan.next] == [
        (old.id, "older than 30 days"), (young.id, "when it is 30 days old"),
    ]  # fmt: skip
    assert plan.next[1].due_at == young.started_at + dt.timedelta(days=30)
    assert best.id not in {p.recording.id for p in plan.next}
    assert all(status(store, r) is schema.RecordingStatus.SAVED for r in (old, best, young))
    assert all(Path(r.path).exists() for r in (old, best, young))


def test_the_plan_of_retention_that_is_off_is_empty(store, deployment, destination):
    saved_recording(store, deployment, destination, 400)
    plan = Retention(store, destination, RetentionPolicy()).next_deletions()
    assert not plan.enabled and plan.next == []
