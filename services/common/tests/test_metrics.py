"""Heartbeat metrics on a real store and this machine."""

from __future__ import annotations

import datetime as dt
import time

from acoustack import metrics, schema
from acoustack.clients import StoreClient
from acoustack.testing import factories


def test_last_recording_age_ignores_failed_recordings(storage_target):
    with StoreClient(storage_target) as store:
        assert metrics.last_recording_age(store).value == -1.0
        deployment = store.start_deployment("meadow", 52.2, 0.12)
        t0 = dt.datetime(2026, 6, 1, 22, 0, tzinfo=dt.UTC)
        store.store_recording(factories.recording(deployment.id, started_at=t0))
        store.store_recording(
            factories.recording(
                deployment.id,
                started_at=t0 + dt.timedelta(minutes=5),
                status=schema.RecordingStatus.FAILED,
                failure_reason="microphone lost",
            )
        )
        age = metrics.last_recording_age(store, now=t0 + dt.timedelta(minutes=10))
        assert (age.name, age.value, age.unit) == ("last_recording_age", 600.0, "s")


def test_process_cpu_is_the_share_since_the_last_heartbeat(tmp_path):
    cpu = metrics.ProcessCpu()
    started = time.process_time()
    while time.process_time() - started < 0.05:  # 50 ms of real work between two heartbeats
        sum(i * i for i in range(10_000))
    busy = cpu()
    assert 0 < busy.value <= 101  # one thread: at most one core, give or take a clock tick
    assert metrics.free_storage(tmp_path).value > 0
    assert metrics.free_memory().value > 0
    assert metrics.process_memory().value > 0
