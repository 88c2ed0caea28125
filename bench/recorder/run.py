"""Recorder benchmark: 60 s of 384 kHz mono from the replay source, in real time.

`make bench-recorder`. The real recorder service (python -m acoustack_recorder) runs against a
scratch database behind a real storage service and a RabbitMQ vhost of its own; a record task is
sent per 3 s slot, as the beat would, until 60 s of audio is recorded, written and registered. CPU
time (user + system, from /proc) of the recorder process over that minute, as a share of one core,
and its peak resident memory (VmHWM) are printed:

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

from acoustack.celery_app import create_app
from acoustack.clients import StoreClient
from acoustack.names import Queue, Task
from acoustack.testing.servers import free_port, rabbitmq_vhost

AUDIO = Path(__file__).resolve().parents[2] / "services" / "detector" / "tests" / "data" / "audio"
SLOT_S = 3.0
TOTAL_S = 60.0
SAMPLERATE_HZ = 384_000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


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
            "RECORDER_SAMPLERATE_HZ": str(SAMPLERATE_HZ),
            "RECORDER_DURATION_S": str(SLOT_S),
            "RECORDER_TEMP_DIR": f"{work}/shm",
            "RECORDER_FALLBACK_TEMP_DIR": f"{work}/disk",
            "RECORDER_DATA_DIR": f"{work}/data",
            "RECORDER_HEALTH_PORT": str(health_port),
            "RECORDER_MIN_FREE_DISK_MB": "1",
            "RECORDER_LOG_LEVEL": "WARNING",
        }
        with service_process("acoustack_recorder", env, health_port) as recorder:
            # One slot first, so the minute measured is steady recording, not start-up.
            app.send_task(Task.RECORD.value)
            wait_for_recordings(store, 1, timeout_s=60)
            cpu_before, wall_before = cpu_seconds(recorder.pid), time.monotonic()
            for _ in range(slots):
                app.send_task(Task.RECORD.value)
            wait_for_recordings(store, 1 + slots, timeout_s=TOTAL_S + 60)
            cpu = cpu_seconds(recorder.pid) - cpu_before
            wall = time.monotonic() - wall_before
            peak = peak_rss_mb(recorder.pid)
        audio_s = sum(e.recording.duration_s for e in store.list_recordings(limit=1000)[1:])
        log(f"recorded {audio_s:.1f} s of audio in {wall:.1f} s; recorder CPU {cpu:.2f} s")
    print(f"recorder_cpu_percent: {100 * cpu / wall:.2f} %")
    print(f"recorder_peak_rss: {peak:.1f} MB")
    return 0


def wait_for_recordings(store: StoreClient, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while len(store.list_recordings(limit=1000)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {count} recordings after {timeout_s:.0f} s")
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
