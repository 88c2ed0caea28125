"""The scheduler as a process: beat fires the program's tasks on aligned slots, the Control API
deploys and reports, configuration errors name the field."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

from acoustack import cli, schema
from acoustack.clients import StoreClient
from acoustack.healthcheck import check
from acoustack.names import DetectArguments, Queue
from acoustack.testing import factories
from acoustack.testing.servers import free_port
from acoustack_scheduler.broker import queue_depths


def start_scheduler(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "acoustack_scheduler"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def record_arrivals(
    app, seconds: float, interval_s: float, deployments: list | None = None
) -> list[float]:
    """Take record tasks off their queue as a recorder would; when the beat sent each (the task's
    own timestamp: its expiry, which the beat sets one interval after sending, so a consumer
    that polls late on a slow host does not move it), and, into ``deployments``, the deployment
    each was sent with."""
    sent = []
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        channel.queue_purge(Queue.RECORDING.value)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            message = channel.basic_get(Queue.RECORDING.value, no_ack=True)
            if message is None:
                time.sleep(0.02)
                continue
            assert message.headers["task"] == "acoustack.record"
            expires = dt.datetime.fromisoformat(message.headers["expires"])
            sent.append(expires.timestamp() - interval_s)
            if deployments is not None:
                _, kwargs, _ = json.loads(message.body)
                deployments.append(kwargs.get("deployment", "not sent"))
    return sent


def test_beat_fires_on_slots_and_the_cli_deploys(app, rabbitmq, storage_target, tmp_path, capsys):
    config = tmp_path / "program.json"
    config.write_text(json.dumps({"recording": {"interval_s": 1, "duration_s": 0.5}}))
    port = free_port()
    proc = start_scheduler({
        "SCHEDULER_BROKER_URL": rabbitmq.url,
        "SCHEDULER_STORAGE_TARGET": storage_target,
        "SCHEDULER_PROGRAM": "detection",
        "SCHEDULER_CONFIG_FILE": str(config),
        "SCHEDULER_GRPC_HOST": "127.0.0.1",
        "SCHEDULER_GRPC_PORT": str(port),
        "SCHEDULER_DISK_PATH": str(tmp_path),
    })  # fmt: skip
    target = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not check(target)[0]:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        # The test stands in for the recorder: it takes each record task as it comes. A slot's task
        # expires at the next slot, so stale ones never pile up in the queue.
        before = []
        arrivals = record_arrivals(app, 4.0, 1.0, before)
        assert 3 <= len(arrivals) <= 5
        assert before[-1] is None  # storage said no deployment is active: nothing to record
        # Aligned slots: each is sent just after a whole second.
        assert all(t % 1.0 < 0.5 for t in arrivals), [round(t % 1.0, 3) for t in arrivals]
        assert queue_depths(app)["recording"] <= 1
        assert (
            cli.main(
                [
                    "deployment",
                    "start",
                    "--name",
                    "meadow",
                    "--latitude",
                    "52.2",
                    "--longitude",
                    "0.12",
                    "--control",
                    target,
                ]
            )
            == 0
        )
        assert "storage: ok" in capsys.readouterr().out
        assert cli.main(["status", "--control", target]) == 0
        assert "program: detection" in capsys.readouterr().out
        # A new interval applies at once, without a restart: slots every 2 s, on even seconds.
        assert (
            cli.main(["config", "set", "--field", "recording.interval_s", "2", "--control", target])
            == 0
        )
        assert "recording.interval_s = 2.0" in capsys.readouterr().out
        assert json.loads(config.read_text())["recording"]["interval_s"] == 2.0
        sent_with = []
        later = record_arrivals(app, 5.0, 2.0, sent_with)
        assert 2 <= len(later) <= 3
        assert [d["name"] for d in sent_with] == ["meadow"] * len(later)
        assert all(int(t) % 2 == 0 and t % 1.0 < 0.5 for t in later), later
        assert (
            cli.main(["config", "get", "--field", "recording.interval_s", "--control", target]) == 0
        )
        assert capsys.readouterr().out.strip() == "2.0"
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output


def test_a_removed_variable_stops_the_scheduler_naming_the_field_that_replaced_it(tmp_path):
    proc = start_scheduler(
        {"SCHEDULER_BROKER_URL": "amqp://x", "SCHEDULER_DETECTION_SWEEP_AFTER_S": "60"}
    )
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert (
        "SCHEDULER_DETECTION_SWEEP_AFTER_S: no longer a setting; the program's "
        "detection.resend_after_s replaced it"
    ) in output


def test_a_bad_program_configuration_names_the_field(tmp_path):
    config = tmp_path / "program.json"
    config.write_text(json.dumps({"recording": {"duratoin_s": 3}}))
    proc = start_scheduler(
        {"SCHEDULER_BROKER_URL": "amqp://x", "SCHEDULER_CONFIG_FILE": str(config)}
    )
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "recording.duratoin_s: Extra inputs are not permitted" in output


def test_the_running_scheduler_sends_detect_again_for_a_recording_left_behind(
    app, rabbitmq, storage_target, tmp_path
):
    """The sweep as the service runs it: a recording stored without its detect (the recorder lost
    power between the two) gets one from the scheduler, after the program's
    detection.resend_after_s, carrying the program's configuration."""
    (tmp_path / "program.json").write_text(json.dumps({"detection": {"resend_after_s": 1}}))
    with StoreClient(storage_target) as store:
        deployment = schema.Deployment(name="meadow")
        store.start_deployment("meadow", deployment_id=deployment.id)
        left_behind = factories.recording(deployment.id)
        store.store_recording(left_behind)
    proc = start_scheduler({
        "SCHEDULER_BROKER_URL": rabbitmq.url,
        "SCHEDULER_STORAGE_TARGET": storage_target,
        "SCHEDULER_PROGRAM": "detection",
        "SCHEDULER_CONFIG_FILE": str(tmp_path / "program.json"),
        "SCHEDULER_GRPC_HOST": "127.0.0.1",
        "SCHEDULER_GRPC_PORT": str(free_port()),
        "SCHEDULER_DISK_PATH": str(tmp_path),
    })  # fmt: skip
    sent_for = None
    try:
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            deadline = time.monotonic() + 20
            while sent_for is None and time.monotonic() < deadline:
                assert proc.poll() is None, proc.stdout.read()
                message = channel.basic_get(Queue.DETECTION.value, no_ack=True)
                if message is None:
                    time.sleep(0.1)
                    continue
                assert message.headers["task"] == "acoustack.detect"
                args, kwargs, _ = json.loads(message.body)
                arguments = DetectArguments.parse(args, kwargs)  # as the detector reads it
                sent_for = str(arguments.recording_id)
                assert arguments.detection.resend_after_s == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert sent_for == str(left_behind.id), output
    assert "detect sent again for 1 recording(s)" in output
    assert proc.returncode == 0, output
