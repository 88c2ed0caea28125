"""The record task with a real worker on RabbitMQ: recordings appear in the store and go to detection."""

from __future__ import annotations

import json
import time

import pytest
from celery.contrib.testing.worker import start_worker

from acoustack import convert
from acoustack.celery_app import create_app, send
from acoustack.clients import StoreClient
from acoustack.names import DetectArguments, Queue, RecordArguments, Task
from acoustack_recorder.recorder import DeviceInfo, Recorder
from acoustack_recorder.sources import SyntheticSource
from acoustack_recorder.tasks import detection_handoff, register_record_task


@pytest.fixture
def app(rabbitmq):
    app = create_app(rabbitmq.url)
    app.conf.broker_heartbeat = 0  # the in-thread test worker then stops in a second
    with app.connection_for_write() as connection:
        for queue in (Queue.RECORDING, Queue.DETECTION):
            app.amqp.queues[queue.value].bind(connection).declare()
            app.amqp.queues[queue.value].bind(connection).purge()
    return app


def test_scheduled_record_tasks_fill_the_store_and_queue_detection(app, storage_target, tmp_path):
    with StoreClient(storage_target) as store:
        deployment = convert.deployment_from_proto(store.start_deployment("meadow", 52.2, 0.12))
        register_record_task(
            app,
            lambda section: Recorder(
                store=store,
                source=SyntheticSource(section.samplerate_hz),
                temp_dir=tmp_path / "tmp",
                device=DeviceInfo("pi-test"),
                duration_s=section.duration_s,
                hand_to_detection=detection_handoff(app),
            ),
        )
        with start_worker(
            app, pool="solo", concurrency=1, queues=[Queue.RECORDING.value],
            perform_ping_check=False, shutdown_timeout=5,
        ):  # fmt: skip
            config = {"recording": {"duration_s": 0.2}}
            send(app, RecordArguments(program_config=config))  # by hand: the recorder asks storage
            for _ in range(2):  # as the beat sends them, once per slot, with the deployment
                send(app, RecordArguments(program_config=config, deployment=deployment))
            send(app, RecordArguments(program_config=config, deployment=None))  # none: nothing
            app.send_task(Task.RECORD.value, kwargs={"deployment": "meadow"})  # refused
            deadline = time.monotonic() + 30
            while len(store.list_recordings()) < 3 or queue_depth(app, Queue.RECORDING):
                assert time.monotonic() < deadline, "recordings did not appear"
                time.sleep(0.1)
        with app.connection_for_write() as connection:
            handed = [
                connection.default_channel.basic_get(Queue.DETECTION.value, no_ack=True)
                for _ in range(3)
            ]
            assert connection.default_channel.basic_get(Queue.DETECTION.value) is None
        assert len(list((tmp_path / "tmp").glob("*.wav"))) == 3
        stored = {r.recording.id: r.recording for r in store.list_recordings()}
        for message in handed:  # each detect task carries its recording: no lookup needed
            args, kwargs, _ = json.loads(message.body)
            arguments = DetectArguments.parse(args, kwargs)  # as the detector reads it
            recording_id = str(arguments.recording_id)
            assert str(arguments.recording.id) == recording_id
            assert arguments.recording.path == stored[recording_id].path
            assert arguments.recording.deployment_id == deployment.id
            # ... and the program's configuration of its slot, which the detector acts on.
            assert arguments.program_config == config


def queue_depth(app, queue: Queue) -> int:
    with app.connection_for_write() as connection:
        return connection.default_channel.queue_declare(queue.value, passive=True).message_count
