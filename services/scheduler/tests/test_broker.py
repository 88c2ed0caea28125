"""Deployment events, queue depths and the flush, on a real RabbitMQ vhost and real storage."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from kombu import Queue as KombuQueue

from acoustack import schema
from acoustack.celery_app import create_app
from acoustack.clients import StoreClient
from acoustack.names import Queue, Task
from acoustack.testing import factories
from acoustack_scheduler.broker import EVENTS, EventAnnouncer, QueueFlusher, queue_depths


@pytest.fixture
def app(rabbitmq):
    app = create_app(rabbitmq.url)
    with app.connection_for_write() as connection:
        for queue in Queue:
            app.amqp.queues[queue.value].bind(connection).declare()
            app.amqp.queues[queue.value].bind(connection).purge()
    yield app
    with app.connection_for_write() as connection:
        for queue in Queue:
            app.amqp.queues[queue.value].bind(connection).purge()


def test_deployment_events_reach_a_subscriber(app):
    deployment = schema.Deployment(name="meadow", latitude=52.2, longitude=0.12)
    with app.connection_for_write() as connection:
        listener = KombuQueue(
            "test-deployment-events", EVENTS, routing_key="deployment.#", auto_delete=True
        )
        listener.bind(connection.default_channel).declare()
        EventAnnouncer(app)("deployment.started", deployment)
        message = listener.bind(connection.default_channel).get(no_ack=True)
    body = json.loads(message.body)
    assert message.delivery_info["routing_key"] == "deployment.started"
    assert body["event"] == "deployment.started"
    assert body["deployment"]["name"] == "meadow"


def test_queue_depths_count_waiting_tasks(app):
    app.send_task(Task.DETECT.value, args=["x"])
    app.send_task(Task.RECORD.value)
    app.send_task(Task.RECORD.value)
    depths = queue_depths(app)
    assert depths == {"recording": 2, "detection": 1, "default": 0}


def test_the_flush_says_what_it_could_not_finish(app, storage_target):
    with StoreClient(storage_target) as store:
        deployment = schema.Deployment(name="meadow")
        started = store.start_deployment("meadow", deployment_id=deployment.id)
        deployment = deployment.model_copy(
            update={"started_at": started.started_at.ToDatetime(tzinfo=dt.UTC)}
        )
        recording = factories.recording(deployment.id)
        store.store_recording(recording)
        store.store_message(schema.Message(content="{}"))
        app.send_task(Task.DETECT.value, args=[str(recording.id)])  # nobody consumes it here
        flusher = QueueFlusher(app, store, required_models=["batdetect2"], poll_s=0.1)
        report = flusher.flush(deployment, timeout_s=0.5)
        assert not report.complete
        assert report.left[0] == "detection: 1 detection task(s) still queued"
        assert any(line.startswith("messaging: 1 message(s) unsent") for line in report.left)
        # The flush queued file management and messaging for the workers.
        assert queue_depths(app)["default"] == 2
        app.amqp.queues[Queue.DETECTION.value].bind(
            app.connection_for_write().default_channel
        ).purge()
        store.store_model_output(factories.model_output(recording.id, model_name="batdetect2"))
        again = QueueFlusher(app, store, required_models=["batdetect2"], poll_s=0.1).flush(
            deployment, 0.5
        )
        assert again.left == [
            "file management: 3 task(s) still queued",  # one more was queued
            "messaging: 1 message(s) unsent",
        ]
