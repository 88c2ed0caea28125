"""The Control API over a loopback gRPC server, with real storage, RabbitMQ and lifecycle."""

from __future__ import annotations

import json
from types import SimpleNamespace

import grpc
import pytest

from acoustack import cli
from acoustack.celery_app import create_app
from acoustack.clients import StoreClient
from acoustack.grpc_server import start_server
from acoustack.names import Queue
from acoustack.testing import factories
from acoustack.v1 import control_pb2, control_pb2_grpc
from acoustack_scheduler.broker import EventAnnouncer, QueueFlusher, queue_depths
from acoustack_scheduler.control_server import ControlServicer, register
from acoustack_scheduler.lifecycle import CheckResult, Lifecycle
from acoustack_scheduler.programs import DetectionProgram
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
    lifecycle = Lifecycle(
        store,
        checks=lambda: [CheckResult("storage", True, "reachable")],
        flusher=QueueFlusher(app, store, poll_s=0.1),
        announce=EventAnnouncer(app),
    )
    status = StatusReporter(
        "detection",
        store,
        {"storage": storage_target},
        lambda: queue_depths(app),
        disk_path=tmp_path,
    )
    program = DetectionProgram()
    tasks = TaskRunner(app, program, program.parse_config({}))
    running = start_server(
        [register(ControlServicer(lifecycle, status, tasks))], address="127.0.0.1:0"
    )
    target = f"127.0.0.1:{running.port}"
    yield SimpleNamespace(
        stub=control_pb2_grpc.ControlStub(grpc.insecure_channel(target)),
        store=store,
        target=target,
        app=app,
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
    recording = factories.recording(started.deployment.id)
    store.store_recording(recording)
    store.store_model_output(factories.model_output(recording.id, n_detections=2))
    status = stub.GetStatus(control_pb2.GetStatusRequest(), timeout=10)
    assert status.program == "detection"
    assert status.deployment.id == started.deployment.id
    assert [(s.name, s.health) for s in status.services] == [("storage", "SERVING")]
    assert {q.name: q.waiting for q in status.queues} == {
        "default": 0,
        "detection": 0,
        "recording": 0,
    }
    assert status.last_recording.id == str(recording.id)
    assert len(status.last_model_output.detections) == 2
    assert status.free_disk_gb > 0
    stopped = stub.StopDeployment(
        control_pb2.ControlStopDeploymentRequest(flush_timeout_s=2), timeout=30
    )
    assert stopped.deployment.HasField("ended_at")
    assert stopped.flush_steps[0] == "detection: done"
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
    assert "storage      ok  reachable" in capsys.readouterr().out
