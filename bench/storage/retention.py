"""Retention benchmark: what a file-management run spends on retention, on 30 days of saved
recordings (the storage benchmark's 30d stage: 96 a day, each with one model output of 200
detections x 5 species tags), against a scratch Postgres database and real files.

`make bench-retention` (or `uv run --frozen python bench/storage/retention.py`).

stdout, one line per figure (medians; no peer: acoupi has no retention):
    retention_idle_run_30d: X ms          a run with nothing due (the usual case, every 2 min)
    retention_hourly_sweep_30d: X ms      the hourly walk: abandoned copies, deleted recordings' files
    retention_rank_species_30d: X ms      ranking the best 3 per species over every saved recording
    retention_delete_per_recording: X ms  deleting for age (store update + file), per recording
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

import acoustack_side
import psycopg
import workload

from acoustack import convert, schema
from acoustack_storage.migrate import apply_migrations
from acoustack_storage.repository import PostgresStore
from acoustack_storage.retention import Retention, RetentionPolicy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: the shared support module
from support import log, scratch_database

DAYS = 30
REPEATS = 5
KEEP_BEST = 3


def prefill(store: PostgresStore, destination: Path) -> schema.Deployment:
    deployment = store.start_deployment(
        schema.Deployment(name="bench", latitude=52.2, longitude=0.12)
    )
    for index in range(DAYS * workload.RECORDINGS_PER_DAY):
        synthetic = workload.recording(index)
        started = synthetic.started_at
        path = destination / f"{started:%Y/%m/%d}" / Path(synthetic.path).name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"RIFF" + bytes(60))
        recording = acoustack_side.schema_recording(index, str(deployment.id)).model_copy(
            update={"path": str(path), "status": schema.RecordingStatus.SAVED}
        )
        store.store_recording(recording)
        output = acoustack_side.schema_model_output(index, recording)
        store.store_model_output(convert.model_output_to_proto(output))
    return deployment


def median_ms(run, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    log(f"  {[round(t, 1) for t in times]} ms")
    return statistics.median(times)


def main() -> int:
    with scratch_database("bench_retention") as url, tempfile.TemporaryDirectory() as scratch:
        with psycopg.connect(url) as conn:
            apply_migrations(conn)
        store = PostgresStore.open(url)
        destination = Path(scratch) / "recordings"
        try:
            log(f"prefilling {DAYS} days of saved recordings …")
            prefill(store, destination)
            last_day = workload.recording(DAYS * workload.RECORDINGS_PER_DAY - 1).started_at
            now = last_day + dt.timedelta(hours=1)

            idle = Retention(
                store,
                destination,
                RetentionPolicy(max_age_days=365, keep_free_mb=1, keep_best_per_species=KEEP_BEST),
                now=lambda: now,
            )
            log("idle runs:")
            idle_ms = median_ms(lambda: idle.run(remove_abandoned_copies=False))
            log("hourly sweeps (abandoned copies, files of deleted recordings):")
            sweep_ms = median_ms(
                lambda: (idle.remove_abandoned_copies(), idle.remove_deleted_leftovers())
            )
            log("ranking:")
            rank_ms = median_ms(idle.best_per_species, repeats=3)

            # Everything older than 20 days goes (10 days' worth), the best 3 per species stay.
            ageing = Retention(
                store,
                destination,
                RetentionPolicy(max_age_days=20, keep_best_per_species=KEEP_BEST),
                now=lambda: now,
            )
            started = time.perf_counter()
            report = ageing.run(remove_abandoned_copies=False)
            elapsed_ms = (time.perf_counter() - started) * 1000
            log(f"age run: {report}")
            per_recording = (elapsed_ms - rank_ms) / max(1, report.deleted_for_age)
        finally:
            store.close()
    print(f"retention_idle_run_{DAYS}d: {idle_ms:.1f} ms")
    print(f"retention_hourly_sweep_{DAYS}d: {sweep_ms:.1f} ms")
    print(f"retention_rank_species_{DAYS}d: {rank_ms:.1f} ms")
    print(f"retention_delete_per_recording: {per_recording:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
