"""The Control API over a loopback gRPC server, with real storage, RabbitMQ and lifecycle."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import grpc
import pytest

from acoustack import cli, schema
from acoustack.celery_app import create_app
from acoustack.clients import StoreClient
from acoustack.grpc_server import start_server
from acoustack.names import Queue
from acoustack.testing import factories
from acoustack.v1 import control_pb2, control_pb2_grpc
from acoustack_scheduler.beat_control import BeatControl
from acoustack_scheduler.broker import EventAnnouncer, QueueFlusher, queue_depths, queue_stats
from acoustack_scheduler.lifecycle import CheckResult, Lifecycle
from acoustack_scheduler.programs import DetectionProgram, expected_workers
from acoustack_scheduler.servicer import ControlServicer, register
from acoustack_scheduler.status import StatusReporter
from acoustack_scheduler.task_runner import TaskRunner


@pytest.fixture
def control(rabbitmq, storage_target, tmp_path):
    app = create_app(rabbitmq.url)
    with app.connection_for_write() as connection:
        for queue in Queue:
            app.amqp.queues[queue.value].bind(connection).declare()
            app.amqp.queues[queue.value].bind(connection).purge()
    store = StoreClient(storage_target)
    program = DetectionProgram()
    pushed: list[tuple[dict, set]] = []  # what the beat would be told to run
    beat = BeatControl(program, program.parse_config({}), lambda *change: pushed.append(change))
    lifecycle = Lifecycle(
        store,
        checks=lambda: [CheckResult("storage", True, "reachable")],
        flusher=QueueFlusher(app, store, poll_s=0.1),
        announce=EventAnnouncer(app),
        pause_recording=lambda: beat.pause("record"),
        resume_recording=lambda: beat.resume("record"),
        on_deployment=beat.set_deployment,
    )
    status = StatusReporter(
        "detection",
        store,
        {"storage": storage_target},
        lambda: queue_stats(app),
        disk_path=tmp_path,
        expected_workers=lambda: expected_workers(DetectionProgram().workers(None)),
    )
    tasks = TaskRunner(app, program, lambda: beat.config, beat.task_arguments)
    running = start_server(
        [register(ControlServicer(lifecycle, status, tasks))], address="127.0.0.1:0"
    )
    target = f"127.0.0.1:{running.port}"
    yield SimpleNamespace(
        stub=control_pb2_grpc.ControlStub(grpc.insecure_channel(target)),
        store=store,
        target=target,
        app=app,
        pushed=pushed,
    )
    running.stop(0)
    store.close()
    with app.connection_for_write() as connection:
        for queue in Queue:
            app.amqp.queues[queue.value].bind(connection).purge()


def test_deploy_status_and_stop(control):
    stub, store = control.stub, control.store
    started = stub.StartDeployment(
        control_pb2.ControlStartDeploymentRequest(name="meadow", latitude=52.2, longitude=0.12),
        timeout=10,
    )
    assert started.deployment.name == "meadow"
    assert [(c.component, c.ok) for c in started.checks] == [("storage", True)]
    # From now on each slot's record task says which deployment it records for.
    schedule, _ = control.pushed[-1]
    assert schedule["record"]["kwargs"]["deployment"]["id"] == started.deployment.id
    recording = factories.recording(started.deployment.id)
    store.store_recording(recording)
    store.store_model_output(factories.model_output(recording.id, n_detections=2))
    status = stub.GetStatus(control_pb2.GetStatusRequest(), timeout=10)
    assert not status.HasField("last_message_sent")
    delivered = schema.Message(content="{}")
    store.store_message(delivered)
    store.store_response(
        schema.Response(message_id=delivered.id, status=schema.ResponseStatus.SUCCESS)
    )
    status = stub.GetStatus(control_pb2.GetStatusRequest(), timeout=10)
    assert status.last_message_sent.message_id == str(delivered.id)
    assert status.program == "detection"
    assert status.deployment.id == started.deployment.id
    assert [(s.name, s.health) for s in status.services] == [("storage", "SERVING")]
    assert {q.name: q.workers for q in status.queues} == dict.fromkeys(
        ("default", "detection", "files", "recording"), 0
    )  # no workers in this test
    # ... while the program needs at least one on each (how many run is the services' own
    # process count, e.g. DETECTOR_CONCURRENCY).
    assert {q.name: q.expected_workers for q in status.queues} == {
        "default": 1, "detection": 1, "files": 1, "recording": 1,
    }  # fmt: skip
    assert {q.name: q.waiting for q in status.queues} == {
        "default": 0,
        "detection": 0,
        "files": 0,
        "recording": 0,
    }
    assert status.last_recording.id == str(recording.id)
    assert len(status.last_model_output.detections) == 2
    assert status.free_disk_gb > 0
    assert status.device_status == "ok"
    # A recording that failed just now: the device's verdict names it, as its heartbeat would.
    failed = factories.recording(started.deployment.id, started_at=dt.datetime.now(dt.UTC))
    store.store_recording(failed)
    store.mark_recording_failed(failed.id, "device: Invalid input device (-9996)")
    status = stub.GetStatus(control_pb2.GetStatusRequest(), timeout=10)
    assert status.device_status == (
        "degraded: 1 recording(s) failed in the last hour (last: device: Invalid input device "
        "(-9996))"
    )
    stopped = stub.StopDeployment(
        control_pb2.ControlStopDeploymentRequest(flush_timeout_s=2), timeout=30
    )
    assert stopped.deployment.HasField("ended_at")
    assert stopped.flush_steps[0] == "detection: done"
    # The stop paused recording during the flush, then resumed it with no deployment.
    paused, dropped = control.pushed[-3]
    assert "record" not in paused and dropped == {"record"}
    assert control.pushed[-1][0]["record"]["kwargs"]["deployment"] is None
    assert not stub.GetStatus(control_pb2.GetStatusRequest(), timeout=10).HasField("deployment")


def test_errors_name_the_problem(control):
    stub = control.stub
    with pytest.raises(grpc.RpcError) as bad:
        stub.StartDeployment(
            control_pb2.ControlStartDeploymentRequest(name="x", latitude=95, longitude=0),
            timeout=10,
        )
    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad.value.details().startswith("latitude: Input should be less than or equal to 90")
    stub.StartDeployment(
        control_pb2.ControlStartDeploymentRequest(name="meadow", skip_checks=True), timeout=10
    )
    with pytest.raises(grpc.RpcError) as twice:
        stub.StartDeployment(control_pb2.ControlStartDeploymentRequest(name="hedge"), timeout=10)
    assert twice.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "deployment 'meadow' is active" in twice.value.details()


def test_the_cli_deploys_reports_and_stops(control, capsys):
    target = control.target
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
    out = capsys.readouterr().out
    assert "storage: ok reachable" in out
    assert "started: meadow at 52.2000, 0.1200" in out
    assert cli.main(["status", "--control", target]) == 0
    out = capsys.readouterr().out
    assert "deployment: meadow at 52.2000, 0.1200" in out and "storage" in out and "SERVING" in out
    assert cli.main(["deployment", "status", "--json", "--control", target]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "meadow"
    assert cli.main(["deployment", "stop", "--flush-timeout", "2", "--control", target]) == 0
    assert "stopped: meadow" in capsys.readouterr().out
    assert cli.main(["deployment", "status", "--control", target]) == 1
    assert (
        cli.main(
            [
                "deployment",
                "start",
                "--name",
                "x",
                "--latitude",
                "95",
                "--longitude",
                "0",
                "--control",
                target,
            ]
        )
        == 1
    )
    assert "latitude: Input should be less than or equal to 90" in capsys.readouterr().err


def test_tasks_are_listed_and_run_and_checks_give_a_verdict(control, capsys):
    target = control.target
    assert cli.main(["task", "list", "--control", target]) == 0
    listing = capsys.readouterr().out
    assert "record           recording  every 10 s   (acoustack.record)" in listing
    assert "heartbeat        default    every 3600 s" in listing
    assert cli.main(["task", "run", "record", "--control", target]) == 0
    assert "sent record to queue recording" in capsys.readouterr().out
    assert queue_depths(control.app)["recording"] == 1
    assert cli.main(["task", "run", "dance", "--control", target]) == 1
    assert (
        "no task 'dance' in program detection (tasks: record, manage-files"
        in capsys.readouterr().err
    )
    assert cli.main(["check", "--control", target]) == 0
    assert "storage                      ok  reachable" in capsys.readouterr().out


def test_the_cli_shows_the_outbox_and_retries_dead_letters(control, capsys):
    from acoustack.v1 import store_pb2

    store, target = control.store, control.target
    t0 = dt.datetime(2026, 6, 1, 21, 0, tzinfo=dt.UTC)
    messages = [
        schema.Message(content=f'{{"n": {n}}}', created_at=t0 + dt.timedelta(seconds=n))
        for n in range(4)
    ]
    for m in messages:
        store.store_message(m)
    for m, status, text in [
        (messages[0], schema.ResponseStatus.FAILED, "HTTP 400 Bad Request: missing field"),
        (messages[1], schema.ResponseStatus.FAILED, "HTTP 413 Payload Too Large: too big"),
        (messages[2], schema.ResponseStatus.ERROR, "HTTP 503 Service Unavailable: "),
    ]:
        store.store_response(
            schema.Response(message_id=m.id, status=status, content=text),
            store_pb2.TryOutcome(
                refused=status is schema.ResponseStatus.FAILED,
                retry_in_s=600,
                dead_after_refusals=1,
            ),
        )
    assert cli.main(["messages", "--control", target]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("outbox: 1 due, 1 backing off (next try 20")
    assert out[0].endswith(", 2 dead letter(s), 0 sent")
    assert out[1] == "dead letters (the newest 2 of 2):"
    assert out[2].startswith(f"  {messages[1].id}  dead since ")  # newest death first
    assert out[3].endswith("): HTTP 413 Payload Too Large: too big")
    assert "1 refusal(s) in 1 attempt(s)" in out[4]
    assert out[5].startswith("      last response (failed, ")
    assert out[5].endswith("): HTTP 400 Bad Request: missing field")
    assert cli.main(["messages", "--json", "--dead-limit", "1", "--control", target]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["counts"] == {
        "due": "1",
        "backing_off": "1",
        "dead": "2",
        "next_attempt_at": shown["counts"]["next_attempt_at"],
    }
    [dead] = shown["dead_letters"]
    assert dead["message"]["id"] == str(messages[1].id)
    assert dead["message"]["state"] == "MESSAGE_STATE_DEAD"
    assert dead["last_response"]["content"] == "HTTP 413 Payload Too Large: too big"
    # Retry one by id, then all that are left.
    assert cli.main(["messages", "retry", str(messages[0].id), "--control", target]) == 0
    assert capsys.readouterr().out == (
        f"1 message(s) due again at the next messaging run\n  {messages[0].id}\n"
    )
    assert cli.main(["messages", "retry", "--all-dead", "--json", "--control", target]) == 0
    assert json.loads(capsys.readouterr().out) == {"message_ids": [str(messages[1].id)]}
    assert [m.id for m in store.get_unsent_messages()] == [str(m.id) for m in messages[:2]] + [
        str(messages[3].id)
    ]
    # Mistakes: named, nothing changed.
    with pytest.raises(SystemExit) as usage:
        cli.main(["messages", "retry", "--control", target])
    assert usage.value.code == 2
    assert "name the message ids to send again, or --all-dead" in capsys.readouterr().err
    unknown = "0b7c6f1e-3f0e-4f57-9b53-1d5a6f0f8a11"
    assert cli.main(["messages", "retry", unknown, "--control", target]) == 1
    assert f"message_ids: no message {unknown}" in capsys.readouterr().err
    with pytest.raises(grpc.RpcError) as bad:
        control.stub.GetOutbox(control_pb2.GetOutboxRequest(dead_limit=5000), timeout=10)
    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad.value.details() == "dead_limit: 5000 is not within 0..1000"
    status = control.stub.GetStatus(control_pb2.GetStatusRequest(), timeout=10)
    assert (status.unsent_messages, status.outbox.due, status.outbox.backing_off) == (4, 3, 1)
