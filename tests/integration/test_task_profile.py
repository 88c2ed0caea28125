"""`acoustack task run NAME --profile` across services: the scheduler's Control API sends the task,
the recorder's real record task runs in a real worker on RabbitMQ against real storage, and the
profile of that run comes back to the CLI."""

from __future__ import annotations

import json

import pytest
from celery.contrib.testing.worker import start_worker

from acoustack import cli, convert
from acoustack.celery_app import create_app
from acoustack.clients import StoreClient
from acoustack.grpc_server import start_server
from acoustack.names import Queue
from acoustack_recorder.recorder import DeviceInfo, Recorder
from acoustack_recorder.sources import SyntheticSource
from acoustack_recorder.tasks import detection_handoff, register_record_task
from acoustack_scheduler.beat_control import BeatControl
from acoustack_scheduler.lifecycle import Lifecycle
from acoustack_scheduler.programs import DetectionProgram
from acoustack_scheduler.servicer import ControlServicer, register
from acoustack_scheduler.status import StatusReporter
from acoustack_scheduler.task_runner import TaskRunner


@pytest.fixture
def control(rabbitmq, storage_target, tmp_path):
    app = create_app(rabbitmq.url)
    app.conf.broker_heartbeat = 0  # the in-thread test worker then stops at once
    with app.connection_for_write() as connection:
        for queue in Queue:
            app.amqp.queues[queue.value].bind(connection).declare()
            app.amqp.queues[queue.value].bind(connection).purge()
    store = StoreClient(storage_target)
    program = DetectionProgram()
    config = program.parse_config({"recording": {"duration_s": 0.2, "min_free_disk_mb": 1}})
    beat = BeatControl(program, config, lambda *change: None)
    beat.set_deployment(convert.deployment_from_proto(store.start_deployment("meadow", 52.2, 0.12)))
    servicer = ControlServicer(
        Lifecycle(store),
        StatusReporter("detection", store, {}, lambda: {}, tmp_path),
        TaskRunner(app, program, lambda: beat.config, beat.task_arguments),
    )
    running = start_server([register(servicer)], address="127.0.0.1:0")
    yield app, store, f"127.0.0.1:{running.port}"
    running.stop(0)
    store.close()


def test_a_profiled_run_says_where_the_time_went(control, tmp_path, capsys):
    app, store, target = control
    register_record_task(
        app,
        lambda section: Recorder(
            store=store,
            source=SyntheticSource(96_000),
            temp_dir=tmp_path / "tmp",
            device=DeviceInfo("pi-test"),
            hand_to_detection=detection_handoff(app),
        ),
    )
    with start_worker(
        app, pool="solo", concurrency=1, queues=[Queue.RECORDING.value],
        perform_ping_check=False, shutdown_timeout=5,
    ):  # fmt: skip
        code = cli.main(["task", "run", "record", "--profile", "--timeout", "60",
                         "--control", target])  # fmt: skip
        out = capsys.readouterr().out
        assert code == 0, out
        assert "acoustack.record on " in out and ": SUCCESS in " in out
        assert "record_slot" in out  # the recorder's own work is among the slowest functions
        assert json.loads(out.split("result: ", 1)[1].splitlines()[0])["outcome"] == "recorded"
        assert len(store.list_recordings()) == 1  # the run was a real one
        # As JSON, for a script.
        assert cli.main(["task", "run", "record", "--profile", "--json", "--timeout", "60",
                         "--control", target]) == 0  # fmt: skip
        report = json.loads(capsys.readouterr().out)["profile"]
        assert report["outcome"] == "SUCCESS"
        assert 0 < report["cpu_s"] <= report["wall_s"] + 0.05
        assert report["functions"][0]["cumulative_s"] >= report["functions"][-1]["cumulative_s"]
    # Nothing takes queue `files` here: the profile never comes, and the CLI says why.
    code = cli.main(["task", "run", "manage-files", "--profile", "--timeout", "8",
                     "--control", target])  # fmt: skip
    captured = capsys.readouterr()
    assert code != 0
    assert "no profile within" in captured.err and "queue files" in captured.err
