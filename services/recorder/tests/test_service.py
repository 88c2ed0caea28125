"""The recorder as a process (python -m acoustack_recorder) against the local RabbitMQ and a real
storage service, recording on schedule from the replay source."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from acoustack.celery_app import create_app, send
from acoustack.clients import StoreClient
from acoustack.healthcheck import check
from acoustack.identity import read_id_file
from acoustack.names import Queue, RecordArguments
from acoustack.testing.servers import free_port
from acoustack.v1 import types_pb2 as pb
from acoustack_recorder.recorder import FAILURE_THRESHOLD

AUDIO = Path(__file__).resolve().parents[2] / "detector" / "tests" / "data" / "audio"


def start_recorder(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "acoustack_recorder"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_the_recorder_process_records_on_schedule_into_the_store(
    rabbitmq, storage_target, tmp_path
):
    app = create_app(rabbitmq.url)
    with app.connection_for_write() as connection:
        for queue in (Queue.RECORDING, Queue.DETECTION):
            app.amqp.queues[queue.value].bind(connection).declare()
            app.amqp.queues[queue.value].bind(connection).purge()
    health_port = free_port()
    with StoreClient(storage_target) as store:
        store.start_deployment("meadow", 52.2, 0.12)
        proc = start_recorder({
            "RECORDER_BROKER_URL": rabbitmq.url,
            "RECORDER_STORAGE_TARGET": storage_target,
            "RECORDER_SOURCE": "replay",
            "RECORDER_REPLAY_DIR": str(AUDIO),
            "ACOUSTACK_TEMP_DIR": str(tmp_path / "shm"),
            "ACOUSTACK_TEMP_FALLBACK_DIR": str(tmp_path / "disk"),
            "RECORDER_DATA_DIR": str(tmp_path / "data"),
            "RECORDER_HEALTH_PORT": str(health_port),
        })  # fmt: skip
        config = {"recording": {"duration_s": 0.5, "min_free_disk_mb": 1}}
        try:
            deadline = time.monotonic() + 30
            while not check(f"127.0.0.1:{health_port}")[0]:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "the recorder never reported SERVING"
                time.sleep(0.2)
            for _ in range(4):  # the beat's part: one record task per slot
                send(app, RecordArguments(program_config=config))
                time.sleep(1.0)
            deadline = time.monotonic() + 30
            while len(store.list_recordings()) < 4:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "recordings did not reach the store"
                time.sleep(0.2)
            recordings = store.list_recordings()
            assert all(e.recording.capture_samplerate_hz == 384_000 for e in recordings)
            assert all(Path(e.recording.path).parent == tmp_path / "shm" for e in recordings)
            assert all(e.recording.duration_s == 0.5 for e in recordings)  # the program's
            # The device's id, as storage (which owns it) gives it: one id for every service.
            assert {e.recording.device_id for e in recordings} == {store.device_id()}
            assert read_id_file(tmp_path / "data") == store.device_id()  # kept for outages
        finally:
            proc.send_signal(signal.SIGTERM)
            output, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, output


def test_bad_settings_stop_the_recorder_with_the_variable_named(tmp_path):
    proc = start_recorder({
        "RECORDER_BROKER_URL": "redis://nope",
        "RECORDER_SOURCE_ID": "mic 0/left",
        # No longer settings: the program's recording section replaced them.
        "RECORDER_DAILY_WINDOWS": "20:00-06:00",
        "RECORDER_SAMPLERATE_HZ": "250000",
        "RECORDER_TEMP_DIR": "/dev/shm/acoustack",
    })  # fmt: skip
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "RECORDER_BROKER_URL: String should match pattern" in output
    assert "RECORDER_SOURCE_ID: String should match pattern" in output
    assert (
        "RECORDER_DAILY_WINDOWS: no longer a setting; the program's recording.daily_windows "
        "replaced it (acoustack config set --field recording.daily_windows VALUE"
    ) in output
    assert "RECORDER_SAMPLERATE_HZ: no longer a setting; the program's recording.samplerate_hz" in (
        output
    )
    assert "RECORDER_TEMP_DIR: no longer a setting; renamed ACOUSTACK_TEMP_DIR" in output
    proc = start_recorder({"RECORDER_BROKER_URL": "amqp://x", "RECORDER_SOURCE": "microphone"})
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "RECORDER_DEVICE: required for the microphone source" in output


def test_a_taken_health_port_stops_the_recorder_with_the_variable_named(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start_recorder({
            "RECORDER_BROKER_URL": "amqp://x",
            "RECORDER_SOURCE": "synthetic",
            "RECORDER_DATA_DIR": str(tmp_path / "data"),
            "RECORDER_HEALTH_PORT": str(port),
        })  # fmt: skip
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert f"RECORDER_HEALTH_PORT: port {port} is taken" in output


def test_repeated_device_failures_turn_health_not_serving(rabbitmq, storage_target, tmp_path):
    """No microphone (PyAudio absent here): each slot fails, and after three in a row the health
    service says NOT_SERVING, which is what makes compose and k3s restart it."""
    app = create_app(rabbitmq.url)
    with app.connection_for_write() as connection:
        app.amqp.queues[Queue.RECORDING.value].bind(connection).declare()
        app.amqp.queues[Queue.RECORDING.value].bind(connection).purge()
    health_port = free_port()
    target = f"127.0.0.1:{health_port}"
    with StoreClient(storage_target) as store:
        store.start_deployment("meadow", 52.2, 0.12)
        proc = start_recorder({
            "RECORDER_BROKER_URL": rabbitmq.url,
            "RECORDER_STORAGE_TARGET": storage_target,
            "RECORDER_SOURCE": "microphone",
            "RECORDER_DEVICE": "UltraMic",
            "ACOUSTACK_TEMP_DIR": str(tmp_path / "shm"),
            "RECORDER_DATA_DIR": str(tmp_path / "data"),
            "RECORDER_HEALTH_PORT": str(health_port),
        })  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not check(target)[0]:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline
                time.sleep(0.2)
            deadline = time.monotonic() + 30
            while check(target)[0]:  # one slot every half second; the device backs off between
                assert time.monotonic() < deadline, "health stayed SERVING through failures"
                send(app, RecordArguments())
                time.sleep(0.5)
            assert check(target)[1].endswith("NOT_SERVING")
            failed = store.list_recordings(statuses=[pb.RECORDING_STATUS_FAILED])
            assert len(failed) >= FAILURE_THRESHOLD
            assert "PyAudio is not installed" in failed[0].recording.failure_reason
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)
