"""Recorder benchmark: 60 s of 384 kHz mono from the replay source, in real time.

`make bench-recorder`. The real recorder service (python -m acoustack_recorder) runs against a
scratch database behind a real storage service and a RabbitMQ vhost of its own; a record task is
sent per 3 s slot, as the beat would, until 60 s of audio is recorded, written and registered.

The service is a process tree: the gRPC process, the spawned Celery worker and its prefork child.
CPU time (user + system, from /proc) of the whole tree over that minute, as a share of one core, and
the tree's peak memory, sampled twice a second as the sum of each process's proportional set size
(PSS: pages shared between the processes counted once, not three times), are printed:

    recorder_cpu_percent: X %
    recorder_peak_rss: X MB
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: the shared support module
from support import log, scratch_database, service_process, storage_service

from acoustack.celery_app import create_app, send
from acoustack.clients import StoreClient
from acoustack.names import Queue, RecordArguments
from acoustack.testing.processes import descendants
from acoustack.testing.servers import free_port, rabbitmq_vhost

AUDIO = Path(__file__).resolve().parents[2] / "services" / "detector" / "tests" / "data" / "audio"
SLOT_S = 3.0
TOTAL_S = 60.0
SAMPLERATE_HZ = 384_000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    return [pid, *descendants(pid)]


def cpu_seconds(pid: int) -> float:
    """User + system time of the tree's living processes (they live for the whole run)."""
    total = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def tree_pss_mb(pid: int) -> float:
    total_kb = 0
    for member in process_tree(pid):
        try:
            lines = Path(f"/proc/{member}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        total_kb += sum(int(line.split()[1]) for line in lines if line.startswith("Pss:"))
    return total_kb / 1024


def main() -> int:
    slots = int(TOTAL_S / SLOT_S)
    with (
        tempfile.TemporaryDirectory() as work,
        scratch_database("bench_recorder") as database_url,
        storage_service(database_url) as storage,
        rabbitmq_vhost() as vhost,
        StoreClient(storage) as store,
    ):
        store.start_deployment("bench", 52.2, 0.12)
        app = create_app(vhost.url)
        with app.connection_for_write() as connection:
            for queue in (Queue.RECORDING, Queue.DETECTION):
                app.amqp.queues[queue.value].bind(connection).declare()
        health_port = free_port()
        env = {
            "RECORDER_BROKER_URL": vhost.url,
            "RECORDER_STORAGE_TARGET": storage,
            "RECORDER_SOURCE": "replay",
            "RECORDER_REPLAY_DIR": str(AUDIO),
            "ACOUSTACK_TEMP_DIR": f"{work}/shm",
            "ACOUSTACK_TEMP_FALLBACK_DIR": f"{work}/disk",
            "RECORDER_DATA_DIR": f"{work}/data",
            "RECORDER_HEALTH_PORT": str(health_port),
            "RECORDER_LOG_LEVEL": "WARNING",
        }
        # What the scheduler sends with each slot: the program's recording section.
        slot = RecordArguments(
            program_config={
                "recording": {
                    "samplerate_hz": SAMPLERATE_HZ,
                    "duration_s": SLOT_S,
                    "min_free_disk_mb": 1,
                }
            }
        )
        with service_process("acoustack_recorder", env, health_port) as recorder:
            # One slot first, so the minute measured is steady recording, not start-up.
            send(app, slot)
            wait_for_recordings(store, 1, timeout_s=60)
            cpu_before, wall_before = cpu_seconds(recorder.pid), time.monotonic()
            for _ in range(slots):
                send(app, slot)
            peak = wait_for_recordings(
                store, 1 + slots, timeout_s=TOTAL_S + 60, sample=lambda: tree_pss_mb(recorder.pid)
            )
            cpu = cpu_seconds(recorder.pid) - cpu_before
            wall = time.monotonic() - wall_before
            processes = len(process_tree(recorder.pid))
        audio_s = sum(e.recording.duration_s for e in store.list_recordings(limit=1000)[1:])
        log(
            f"recorded {audio_s:.1f} s of audio in {wall:.1f} s; recorder CPU {cpu:.2f} s "
            f"over {processes} processes"
        )
    print(f"recorder_cpu_percent: {100 * cpu / wall:.2f} %")
    print(f"recorder_peak_rss: {peak:.1f} MB")
    return 0


def wait_for_recordings(
    store: StoreClient, count: int, timeout_s: float, sample=lambda: 0.0
) -> float:
    """Wait for ``count`` recordings, calling ``sample`` twice a second; its largest value."""
    deadline = time.monotonic() + timeout_s
    peak = sample()
    while len(store.list_recordings(limit=1000)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {count} recordings after {timeout_s:.0f} s")
        time.sleep(0.5)
        peak = max(peak, sample())
    return peak


if __name__ == "__main__":
    sys.exit(main())
