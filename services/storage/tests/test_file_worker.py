"""The storage process with its file-management worker: `manage_files` sent over RabbitMQ moves a
recording while the gRPC Store keeps answering; its settings fail by name."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
import wave
from pathlib import Path

import pytest

from acoustack.celery_app import create_app
from acoustack.clients import StoreClient
from acoustack.errors import ConfigError
from acoustack.healthcheck import check
from acoustack.names import Queue, Task
from acoustack.testing import factories
from acoustack.testing.servers import free_port
from acoustack.v1 import types_pb2 as pb
from acoustack_storage.settings import PREFIX, StorageSettings


def wait_for(condition, timeout_s: float, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        if value := condition():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s\n{log.read_text()}")


def test_the_service_moves_a_recording_when_told_over_rabbitmq(database_url, rabbitmq, tmp_path):
    temp_dir, destination, log = tmp_path / "shm", tmp_path / "recordings", tmp_path / "storage.log"
    temp_dir.mkdir()
    app = create_app(rabbitmq.url)
    with app.connection_for_write() as connection:
        queue = app.amqp.queues[Queue.FILES.value].bind(connection)
        queue.declare()
        queue.purge()  # the vhost lives for the whole run: start from an empty queue
    port = free_port()
    with log.open("w") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "acoustack_storage"],
            env={
                **os.environ,
                "STORAGE_DATABASE_URL": database_url,
                "STORAGE_GRPC_HOST": "127.0.0.1",
                "STORAGE_GRPC_PORT": str(port),
                "STORAGE_BROKER_URL": rabbitmq.url,
                "ACOUSTACK_TEMP_DIR": str(temp_dir),
                "STORAGE_DATA_DIR": str(tmp_path / "storage-data"),
            },
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    target = f"127.0.0.1:{port}"
    try:
        wait_for(lambda: check(target)[0], 60, proc, log)
        with StoreClient(target) as client:
            deployment = client.start_deployment("meadow", 52.2, 0.12)
            rid = uuid.uuid4()
            path = temp_dir / f"20260601_213000-mic-0-{rid.hex[:8]}.wav"
            with wave.open(str(path), "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(48_000)
                wav.writeframes(b"\x01\x00" * 4800)
            content = path.read_bytes()
            client.store_recording(factories.recording(deployment.id, id=rid, path=str(path)))
            client.store_model_output(factories.model_output(rid))
            app.send_task(
                Task.MANAGE_FILES.value,
                kwargs={
                    "program_config": {
                        "file_management": {"destination": str(destination)},
                        "detection": {},
                    }
                },
            )

            def saved_recording():
                recording = client.get_recording(rid).recording
                return recording if recording.status == pb.RECORDING_STATUS_SAVED else None

            saved = wait_for(saved_recording, 60, proc, log)
            # gRPC still answers after the worker forked its pool child.
            assert saved.path == str(destination / "2026" / "06" / "01" / path.name)
        assert Path(saved.path).read_bytes() == content
        assert not path.exists()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        assert proc.returncode == 0, log.read_text()
        assert "manage_files: 1 saved, 0 deleted" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"STORAGE_BROKER_URL": "redis://x"}, "STORAGE_BROKER_URL: String should match pattern"),
        # Variables that are no longer settings stop the service, saying what replaced them.
        (
            {"STORAGE_TASK_TIME_LIMIT_S": "30"},
            "STORAGE_TASK_TIME_LIMIT_S: no longer a setting; a task's time limits are part of "
            "its contract",
        ),
        (
            {"STORAGE_TEMP_DIR": "/dev/shm/acoustack"},
            "STORAGE_TEMP_DIR: no longer a setting; renamed ACOUSTACK_TEMP_DIR",
        ),
    ],
)
def test_bad_worker_settings_name_the_variable(environ, message):
    with pytest.raises(ConfigError) as info:
        StorageSettings.load(PREFIX, {"STORAGE_DATABASE_URL": "postgresql://x/y", **environ})
    assert message in str(info.value)


def test_the_worker_is_optional_and_its_settings_have_defaults():
    settings = StorageSettings.load(
        PREFIX, {"STORAGE_DATABASE_URL": "postgresql://x/y", "STORAGE_BROKER_URL": ""}
    )
    assert settings.broker_url == ""
    assert settings.temp_dir == Path("/dev/shm/acoustack")
    # The one name the recorder reads too.
    moved = StorageSettings.load(
        PREFIX, {"STORAGE_DATABASE_URL": "postgresql://x/y", "ACOUSTACK_TEMP_DIR": "/mnt/ram"}
    )
    assert moved.temp_dir == Path("/mnt/ram")


def test_a_port_already_taken_stops_storage_naming_it():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "acoustack_storage"],
            env={**os.environ, "STORAGE_DATABASE_URL": "postgresql://x/y",
                 "STORAGE_BROKER_URL": "amqp://x", "STORAGE_GRPC_HOST": "127.0.0.1",
                 "STORAGE_GRPC_PORT": str(port)},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 2
    assert f"STORAGE_GRPC_PORT: port {port} is taken" in proc.stderr
