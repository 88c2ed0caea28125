"""A card never fills, with the shipped defaults: a month of recordings on a real, small file system.

The detection program's defaults (no change but the destination) run the real file management and
retention over a size-limited tmpfs: 1,080 recordings of 3 s at 384 kHz (2.3 MB each, real bat
audio), 36 a day for 30 days, with detections scored as a model would. The card holds 1.5 GB, so
what the saving filter keeps overflows it several times over. What a field engineer checks after a
month away: recording never had to stop, nothing on the card is corrupt or unaccounted for, the
best recordings of each species are all there, and the heartbeat and `acoustack status` say what
was deleted and why.
"""

from __future__ import annotations

import datetime as dt
import io
import random
import shutil
import statistics
import subprocess
import uuid
import wave
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from acoustack import convert, schema
from acoustack.celery_app import create_app
from acoustack.clients import StoreClient
from acoustack.grpc_server import start_server
from acoustack.testing import factories
from acoustack_messenger.device_status import Assessment
from acoustack_recorder.conditions import FreeDiskSpace
from acoustack_scheduler.cli import retention_line
from acoustack_scheduler.programs import DetectionProgramConfig
from acoustack_storage.repository import PostgresStore, RecordingFilter
from acoustack_storage.servicer import StoreServicer, register
from acoustack_storage.tasks import register_manage_files_task

MB = 1024 * 1024
CARD_MB = 1536
RAM_AREA_MB = 64  # the recorder's temporary area is RAM of its own, as on a device
DAYS, PER_DAY, PER_RUN = 30, 36, 6  # a file-management run every 4 simulated hours
RATE, SECONDS = 384_000, 3
SPECIES = {  # how often each is heard; the rare one must never lose a recording
    "Pipistrellus pipistrellus": 0.6,
    "Myotis daubentonii": 0.25,
    "Nyctalus noctula": 0.145,
    "Barbastella barbastellus": 0.005,
}
AUDIO = Path(__file__).parents[2] / "services/detector/tests/data/audio"


def mount_tmpfs(path: Path, size_mb: int) -> None:
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, (
        f"mounting a {size_mb} MB tmpfs at {path} failed ({done.stderr.strip()}): this test needs "
        "root, as CI runs it"
    )


@pytest.fixture
def card(tmp_path):
    """The card (a 1.5 GB tmpfs) and the RAM area (64 MB), both real file systems."""
    mounts = SimpleNamespace(card=tmp_path / "card", ram=tmp_path / "ram")
    mount_tmpfs(mounts.card, CARD_MB)
    try:
        mount_tmpfs(mounts.ram, RAM_AREA_MB)
        try:
            yield mounts
        finally:
            subprocess.run(["umount", "-l", str(mounts.ram)], check=False)
    finally:
        subprocess.run(["umount", "-l", str(mounts.card)], check=False)


@pytest.fixture
def storage(database_url):
    store = PostgresStore.open(database_url, timeout_s=5.0)
    running = start_server([register(StoreServicer(store))], address="127.0.0.1:0")
    client = StoreClient(f"127.0.0.1:{running.port}")
    yield SimpleNamespace(repository=store, client=client)
    client.close()
    running.stop(0)
    store.close()


def bat_wav_bytes() -> bytes:
    """3 s at 384 kHz of a real recording (a serotine bat), looped: what the recorder writes."""
    with wave.open(str(AUDIO / "20180530_213516-EPTSER-LR_0_0.5.wav")) as source:
        samples = np.frombuffer(source.readframes(source.getnframes()), dtype="<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as target:
        target.setnchannels(1)
        target.setsampwidth(2)
        target.setframerate(RATE)
        target.writeframes(np.resize(samples, RATE * SECONDS).astype("<i2").tobytes())
    return buffer.getvalue()


def heard(rng: random.Random) -> list[tuple[str, float]]:
    """What a model finds in one recording: nothing half the time, else a call or two."""
    if rng.random() < 0.45:
        return []
    names, weights = zip(*SPECIES.items(), strict=True)
    return [
        (rng.choices(names, weights)[0], round(rng.uniform(0.25, 1.0), 3))
        for _ in range(rng.choice((1, 1, 2)))
    ]


def wav_is_whole(path: Path, expected: bytes) -> bool:
    with wave.open(str(path)) as reader:
        if (reader.getframerate(), reader.getnframes()) != (RATE, RATE * SECONDS):
            return False
    return path.read_bytes() == expected


@pytest.mark.timeout(600)
def test_a_month_on_a_small_card_with_the_shipped_defaults(card, storage):
    destination = card.card / "recordings"
    defaults = DetectionProgramConfig()
    program = defaults.model_dump(mode="json")
    program["file_management"]["destination"] = str(destination)  # the one change: where
    fm = defaults.file_management
    stop_at_mb = defaults.recording.min_free_disk_mb
    assert fm.keep_free_mb > stop_at_mb and fm.keep_best_per_species > 0 and not fm.save_all

    repository, client = storage.repository, storage.client
    month_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=DAYS)
    deployment = repository.start_deployment(
        schema.Deployment(name="pole 7", latitude=51.6, longitude=-1.3, started_at=month_ago)
    )
    app = create_app("amqp://guest:guest@127.0.0.1:1/unused")
    manage_files = register_manage_files_task(app, lambda: repository, [card.ram])
    recorder_floor = FreeDiskSpace(destination.parent, stop_at_mb * MB)
    audio = bat_wav_bytes()
    rng = random.Random(20261201)

    calls_of: dict[uuid.UUID, list[tuple[str, float]]] = {}
    stopped_at: list[str] = []
    least_free_mb = float("inf")
    total = DAYS * PER_DAY
    for start in range(0, total, PER_RUN):
        verdict = recorder_floor.check(dt.datetime.now(dt.UTC))
        if not verdict:
            stopped_at.append(f"recording {start}: {verdict.reason}")
        for index in range(start, start + PER_RUN):
            started = month_ago + dt.timedelta(days=index / PER_DAY)
            recording_id = uuid.uuid4()
            path = card.ram / f"{started:%Y%m%d_%H%M%S}_{recording_id.hex[:8]}.wav"
            path.write_bytes(audio)
            repository.store_recording(
                factories.recording(
                    deployment.id,
                    id=recording_id,
                    path=str(path),
                    started_at=started,
                    duration_s=SECONDS,
                    capture_samplerate_hz=RATE,
                )
            )
            calls_of[recording_id] = heard(rng)
            repository.store_model_output(
                convert.model_output_to_proto(
                    factories.species_calls(recording_id, calls_of[recording_id])
                )
            )
        result = manage_files(program_config=program)
        assert result["outcome"] != "failed", result
        least_free_mb = min(least_free_mb, shutil.disk_usage(destination).free / MB)

    # Recording never had to stop: the card always kept more than the recorder's own floor.
    assert stopped_at == []
    assert least_free_mb > stop_at_mb
    summary = repository.retention_summary(month_ago)
    assert summary.deleted_for_space > 100, "the card never filled: the test proves nothing"
    assert summary.last.short_of_free_mb == 0

    # Nothing corrupt, nothing unaccounted for: every saved recording's file is whole, on the
    # card; every file on the card is a saved recording; nothing is left half-written or in RAM.
    entries = [e.recording for e in repository.list_recordings(RecordingFilter(limit=10_000))]
    assert len(entries) == total
    by_status: dict[schema.RecordingStatus, list[schema.Recording]] = {}
    for recording in entries:
        by_status.setdefault(recording.status, []).append(recording)
    assert schema.RecordingStatus.TEMPORARY not in by_status
    assert schema.RecordingStatus.FAILED not in by_status
    saved = by_status[schema.RecordingStatus.SAVED]
    for recording in saved:
        assert Path(recording.path).is_relative_to(destination), recording.path
        assert wav_is_whole(Path(recording.path), audio), recording.path
    on_card = {str(p) for p in destination.rglob("*") if p.is_file()}
    assert on_card == {r.path for r in saved}
    assert list(card.ram.iterdir()) == []

    # What was kept is what a user would keep: only recordings the saving filter accepts (a
    # detection at least 0.5 confident), every one of each species' five best, and, for space,
    # the least valuable went first.
    def best(recording) -> float:
        return max((score for _, score in calls_of[recording.id]), default=0.0)

    assert min(best(r) for r in saved) >= fm.saving_threshold
    for species in SPECIES:
        ranked = sorted(
            (
                (score, r.id)
                for r in saved + by_status[schema.RecordingStatus.DELETED]
                for name, score in calls_of[r.id]
                if name == species and score >= fm.saving_threshold
            ),
            reverse=True,
        )
        top = {rid for _, rid in ranked[: fm.keep_best_per_species]}
        assert top <= {r.id for r in saved}, f"{species}: one of its best recordings was deleted"
    deleted_for_space = [
        r
        for r in by_status[schema.RecordingStatus.DELETED]
        if Path(r.path).is_relative_to(destination)
    ]
    assert len(deleted_for_space) == summary.deleted_for_space
    assert statistics.median(best(r) for r in deleted_for_space) < statistics.median(
        best(r) for r in saved
    )

    print(
        f"card: {total} recordings, {len(saved)} saved, {len(deleted_for_space)} deleted for "
        f"space, least free {least_free_mb:.0f} MB of {CARD_MB} MB"
    )

    # The user is told: the heartbeat's status and metrics, and `acoustack status`.
    # (Judged just after the month's last recording: the simulated slots were 40 min apart.)
    just_after = max(r.started_at for r in entries) + dt.timedelta(seconds=5)
    judged = Assessment(client, None, program, now=just_after)
    assert judged.status() == "ok"
    metrics = {f().name: f().value for f in judged.metrics()}
    assert metrics["recordings_deleted_for_space_last_day"] == summary.deleted_for_space
    line = retention_line(client.retention())
    assert f"deleted {summary.deleted_for_space} for space and 0 for age in the last 24 h" in line
    assert "the least valuable first while under 1024 MB free" in line
    assert "keeps the best 5 of each species" in line

    # A floor retention cannot hold (here: nothing may go) turns the heartbeat degraded, naming it.
    program["file_management"]["keep_best_per_species"] = 10_000
    program["file_management"]["keep_free_mb"] = CARD_MB
    assert manage_files(program_config=program)["outcome"] != "failed"
    status = Assessment(client, None, program, now=just_after).status()
    assert status.startswith(
        f"degraded: disk filling: retention cannot keep {CARD_MB} MB free on {destination}"
    ), status
