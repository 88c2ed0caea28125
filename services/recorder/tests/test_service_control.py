"""The recorder process under the scheduler's control: the program's recording settings arrive
with each task, the pool enforces the task's time limit, and SelfCheck makes a test recording."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from acoustack.celery_app import create_app, send
from acoustack.clients import StoreClient
from acoustack.healthcheck import check
from acoustack.names import Queue, RecordArguments, Task
from acoustack.self_check import ask
from acoustack.testing.processes import descendants
from acoustack.testing.servers import free_port

AUDIO = Path(__file__).resolve().parents[2] / "detector" / "tests" / "data" / "audio"


@contextlib.contextmanager
def recorder_process(tmp_path: Path, rabbitmq_url: str, storage_target: str, **env: str):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "acoustack_recorder"],
        env={
            **os.environ,
            "RECORDER_BROKER_URL": rabbitmq_url,
            "RECORDER_STORAGE_TARGET": storage_target,
            "ACOUSTACK_TEMP_DIR": str(tmp_path / "shm"),
            "ACOUSTACK_TEMP_FALLBACK_DIR": str(tmp_path / "disk"),
            "RECORDER_DATA_DIR": str(tmp_path / "data"),
            "RECORDER_HEALTH_PORT": str(port),
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not check(f"127.0.0.1:{port}")[0]:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the recorder never reported SERVING"
            time.sleep(0.2)
        yield proc, f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return value


@pytest.fixture
def app(rabbitmq):
    app = create_app(rabbitmq.url)
    with app.connection_for_write() as connection:
        for queue in (Queue.RECORDING, Queue.DETECTION):
            app.amqp.queues[queue.value].bind(connection).declare()
            app.amqp.queues[queue.value].bind(connection).purge()
    return app


def recording_section(**values) -> dict:
    return {"recording": {"samplerate_hz": 96_000, "min_free_disk_mb": 1, **values}}


def test_settings_sent_with_the_task_change_the_next_recording(
    app, rabbitmq, storage_target, tmp_path
):
    """What `acoustack config set recording.duration_s` relies on: no restart, next slot."""
    with (
        StoreClient(storage_target) as store,
        recorder_process(
            tmp_path, rabbitmq.url, storage_target,
            RECORDER_SOURCE="replay", RECORDER_REPLAY_DIR=str(AUDIO),
        ),
    ):  # fmt: skip
        store.start_deployment("meadow", 52.2, 0.12)
        record(app, duration_s=0.5, samplerate_hz=384_000)
        wait_for(lambda: len(store.list_recordings()) == 1, 30, "first recording missing")
        record(app, duration_s=1.25, time_expansion=10)
        wait_for(lambda: len(store.list_recordings()) == 2, 30, "second recording missing")
        first, second = recordings_in_order(store)
        assert (first.duration_s, first.capture_samplerate_hz) == (0.5, 384_000)
        assert (second.duration_s, second.capture_samplerate_hz) == (1.25, 96_000)
        assert second.time_expansion == 10
        with wave.open(second.path, "rb") as wav:
            assert wav.getframerate() == 9_600  # the header rate is the capture rate / TE
        # A malformed section is refused by name and nothing is recorded: the slot after it
        # (0.75 s, recorded after it in the same queue) is the only new recording.
        app.send_task(
            Task.RECORD.value, kwargs={"program_config": recording_section(duration_s="long")}
        )
        record(app, duration_s=0.75)
        wait_for(
            lambda: any(r.duration_s == 0.75 for r in recordings_in_order(store)),
            30,
            "the next slot did not record",
        )
        assert [r.duration_s for r in recordings_in_order(store)] == [0.5, 1.25, 0.75]


def record(app, **recording) -> None:
    send(app, RecordArguments(program_config=recording_section(**recording)))


def recordings_in_order(store):
    return sorted(
        (e.recording for e in store.list_recordings()), key=lambda r: r.started_at.ToNanoseconds()
    )


def test_a_recording_past_its_time_limit_is_stopped_and_the_next_slot_records(
    app, rabbitmq, storage_target, tmp_path
):
    with (
        StoreClient(storage_target) as store,
        recorder_process(
            tmp_path, rabbitmq.url, storage_target,
            RECORDER_SOURCE="synthetic",
        ) as (proc, target),
    ):  # fmt: skip
        store.start_deployment("meadow", 52.2, 0.12)
        first_child = descendants(proc.pid)
        started = time.monotonic()
        # A 20 s real-time recording with only a 2 s hard limit, as for a device whose read
        # blocks where a soft limit cannot interrupt it: the pool must kill its child.
        send(
            app,
            RecordArguments(program_config=recording_section(duration_s=20, samplerate_hz=48_000)),
            time_limit=2,
        )
        record(app, duration_s=0.5, samplerate_hz=48_000)
        entries = wait_for(
            store.list_recordings, 30, "the slot after the killed one did not record"
        )
        # Not stopped, the 20 s recording would end (and be stored first) 20 s after the send.
        # Killed at 2 s, the replacement child records the next slot within a fraction of a
        # second; the bound leaves room for a loaded machine.
        assert time.monotonic() - started < 12, "the 20 s recording was not stopped at its limit"
        assert [e.recording.duration_s for e in entries] == [0.5]
        assert proc.poll() is None  # the service lives on; only the pool's child was replaced
        # The child serves health and SelfCheck: the one that replaced it serves them again.
        assert descendants(proc.pid) != first_child
        wait_for(lambda: check(target)[0], 15, "health from the new pool child")


def test_self_check_makes_a_test_recording_and_names_silence(rabbitmq, storage_target, tmp_path):
    with recorder_process(
        tmp_path, rabbitmq.url, storage_target,
        RECORDER_SOURCE="replay", RECORDER_REPLAY_DIR=str(AUDIO),
    ) as (_proc, target):  # fmt: skip
        results = ask("recorder", target, recording_section())
        verdicts = {r.component: r for r in results}
        assert verdicts["recorder: disk"].ok
        test = verdicts["recorder: test recording"]
        assert test.ok, test.detail
        assert "1.00 s at 96000 Hz, 1 channel(s)" in test.detail
        assert not list((tmp_path / "shm").rglob("*.wav")), "the test recording was left behind"
    silent = tmp_path / "silent"
    silent.mkdir()
    with wave.open(str(silent / "quiet.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(96_000)
        wav.writeframes(np.zeros(96_000, dtype=np.int16).tobytes())
    # Saved recordings go to a disk of their own (a RAM temporary area, as in the containers).
    with recorder_process(
        tmp_path, rabbitmq.url, storage_target,
        RECORDER_SOURCE="replay", RECORDER_REPLAY_DIR=str(silent),
        RECORDER_DISK_PATH=str(silent),
    ) as (_proc, target):  # fmt: skip
        huge = 10**9  # MB: more than any disk here
        results = ask(
            "recorder", target,
            {"recording": {"samplerate_hz": 96_000, "duration_s": 2, "min_free_disk_mb": huge}},
        )  # fmt: skip
        verdicts = {r.component: r for r in results}
        test = verdicts["recorder: test recording"]
        assert not test.ok
        assert "only silence" in test.detail and "microphone" in test.detail
        assert not verdicts["recorder: disk"].ok
        assert str(silent) in verdicts["recorder: disk"].detail
        assert verdicts["recorder: temporary area"].ok  # room for the next recordings
        bad = ask("recorder", target, {"recording": {"duration_s": -1}})
        assert not bad[0].ok
        assert "recording.duration_s" in bad[0].detail
    unreachable = ask("recorder", "127.0.0.1:1", {}, timeout_s=2)
    assert not unreachable[0].ok and "UNAVAILABLE" in unreachable[0].detail


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_service_takes_its_pool_child_with_it(rabbitmq, storage_target, tmp_path):
    """As in a container, where a dead service's processes all go: no orphan pool child may go on
    recording and serving health out of sight."""
    with recorder_process(
        tmp_path, rabbitmq.url, storage_target, RECORDER_SOURCE="synthetic"
    ) as (proc, _target):  # fmt: skip
        workers = wait_for(lambda: descendants(proc.pid), 30, "the pool child")
        proc.kill()
        proc.wait(10)
        wait_for(lambda: not any(alive(pid) for pid in workers), 15, "the orphans to die")
