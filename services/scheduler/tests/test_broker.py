"""Deployment events, queue depths and the flush, on a real RabbitMQ vhost and real storage."""

from __future__ import annotations

import datetime as dt
import json

from kombu import Queue as KombuQueue

from acoustack import schema
from acoustack.clients import StoreClient
from acoustack.names import Queue, Task
from acoustack.testing import factories
from acoustack.v1 import types_pb2 as pb
from acoustack_scheduler.broker import EVENTS, EventAnnouncer, QueueFlusher, queue_depths


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
    assert depths == {"recording": 2, "detection": 1, "files": 0, "default": 0}


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
        assert "messaging: 1 task(s) still queued" in report.left
        # The flush queued file management and messaging for their workers.
        assert queue_depths(app)["files"] == 1
        assert queue_depths(app)["default"] == 1
        channel = app.connection_for_write().default_channel
        app.amqp.queues[Queue.DEFAULT.value].bind(channel).purge()
        app.amqp.queues[Queue.DETECTION.value].bind(
            app.connection_for_write().default_channel
        ).purge()
        store.store_model_output(factories.model_output(recording.id, model_name="batdetect2"))
        again = QueueFlusher(app, store, required_models=["batdetect2"], poll_s=0.1).flush(
            deployment, 0.5
        )
        assert again.left == [
            "file management: 2 task(s) still queued",  # one more was queued
            "messaging: 1 task(s) still queued",
        ]
        app.amqp.queues[Queue.DEFAULT.value].bind(channel).purge()
        # With the messaging queue drained, what is left is the outbox itself.
        assert QueueFlusher(app, store, poll_s=0.1)._outbox_empty() == "1 message(s) unsent"


def test_the_flush_asks_for_another_send_while_messages_stay_unsent(app, storage_target):
    """A run that could not send everything (a failed send, a message stored after it read the
    outbox) is followed by another one, rather than waiting for the schedule."""
    import threading

    with StoreClient(storage_target) as store:
        deployment = schema.Deployment(name="meadow")
        store.start_deployment("meadow", deployment_id=deployment.id)
        store.store_message(schema.Message(content="{}"))
        runs: list[str] = []
        stop = threading.Event()

        def messenger_that_never_reaches_its_server():
            with app.connection_for_read() as connection:
                queues = [  # file management is done at once; messaging never gets through
                    app.amqp.queues[name.value].bind(connection.default_channel)
                    for name in (Queue.FILES, Queue.DEFAULT)
                ]
                while not stop.is_set():
                    for queue in queues:
                        message = queue.get(no_ack=True)
                        if message is not None:
                            runs.append(message.headers["task"])
                    stop.wait(0.05)

        consumer = threading.Thread(target=messenger_that_never_reaches_its_server)
        consumer.start()
        try:
            flusher = QueueFlusher(app, store, poll_s=0.05, resend_s=0.3)
            report = flusher.flush(deployment, timeout_s=1.5)
        finally:
            stop.set()
            consumer.join(5)
        assert report.left == ["messaging: 1 message(s) unsent"]
        assert runs.count(Task.SEND_MESSAGES.value) >= 3
        # Bounded: not more often than every resend_s over the flush.
        assert runs.count(Task.SEND_MESSAGES.value) <= 1 + 1.5 / 0.3 + 1


def test_with_nowhere_to_send_the_flush_does_not_wait_for_the_outbox(app, storage_target):
    with StoreClient(storage_target) as store:
        deployment = schema.Deployment(name="meadow")
        store.start_deployment("meadow", deployment_id=deployment.id)
        store.store_message(schema.Message(content="{}"))
        with app.connection_for_write() as connection:  # file management done by a "worker"
            flusher = QueueFlusher(app, store, poll_s=0.05, can_send=lambda: False)
            report = flusher.flush(deployment, timeout_s=0.3)
            app.amqp.queues[Queue.FILES.value].bind(connection.default_channel).purge()
        assert report.steps[-1] == (
            "messaging: no destination configured; 1 message(s) stay in the outbox"
        )
        assert not any(left.startswith("messaging") for left in report.left)
        assert queue_depths(app)["default"] == 0  # no send asked for


def test_the_flush_waits_until_file_management_has_filed_every_recording(app, storage_target):
    """A worker that has taken the task has drained the queue, but the stop is done only once
    the recordings are filed: the flush waits for them, not for the queue."""
    import threading

    with StoreClient(storage_target) as store:
        deployment = schema.Deployment(name="meadow")
        store.start_deployment("meadow", deployment_id=deployment.id)
        recording = factories.recording(deployment.id)
        store.store_recording(recording)
        store.store_model_output(factories.model_output(recording.id))
        taken = threading.Event()
        filed = threading.Event()
        stop = threading.Event()

        def slow_file_worker():
            with app.connection_for_read() as connection:
                queue = app.amqp.queues[Queue.FILES.value].bind(connection.default_channel)
                while not stop.is_set() and queue.get(no_ack=True) is None:
                    stop.wait(0.05)
                taken.set()
                stop.wait(0.8)  # filing takes a while after the task left the queue
                store.update_recording_path(
                    recording.id, "/data/2026/06/01/r.wav", schema.RecordingStatus.SAVED
                )
                filed.set()

        worker = threading.Thread(target=slow_file_worker)
        worker.start()
        try:
            flusher = QueueFlusher(
                app, store, every_recording_detected=True, poll_s=0.05, can_send=lambda: False
            )
            report = flusher.flush(deployment, timeout_s=10)
            filed_when_the_flush_returned = filed.is_set()
        finally:
            stop.set()
            worker.join(5)
        assert taken.is_set()
        assert filed_when_the_flush_returned
        assert "file management: done" in report.steps
        assert store.get_recording(recording.id).recording.status == pb.RECORDING_STATUS_SAVED


def test_a_stop_sends_detect_again_for_a_recording_whose_task_was_lost(app, storage_target):
    """The recorder lost power between storing a recording and sending its detect: the stop does
    not wait out its timeout for an output that nothing will make."""
    import threading

    from acoustack_scheduler.detection_sweep import DetectionSweep

    with StoreClient(storage_target) as store:
        deployment = schema.Deployment(name="meadow")
        store.start_deployment("meadow", deployment_id=deployment.id)
        lost = factories.recording(deployment.id)
        store.store_recording(lost)  # and no detect task anywhere
        stop = threading.Event()
        detected = []

        def detector():
            with app.connection_for_read() as connection:
                queue = app.amqp.queues[Queue.DETECTION.value].bind(connection.default_channel)
                while not stop.is_set():
                    message = queue.get(no_ack=True)
                    if message is None:
                        stop.wait(0.05)
                        continue
                    recording_id = json.loads(message.body)[0][0]
                    detected.append(recording_id)
                    store.store_model_output(factories.model_output(recording_id))

        worker = threading.Thread(target=detector)
        worker.start()
        try:
            flusher = QueueFlusher(
                app,
                store,
                every_recording_detected=True,
                poll_s=0.05,
                can_send=lambda: False,
                detection_sweep=lambda: DetectionSweep(
                    store,
                    lambda recording_id: app.send_task(Task.DETECT.value, args=[recording_id]),
                    lambda: queue_depths(app, [Queue.DETECTION.value])[Queue.DETECTION.value],
                    after_s=0.3,
                ),
            )
            report = flusher.flush(deployment, timeout_s=5)
        finally:
            stop.set()
            worker.join(5)
        assert detected == [str(lost.id)]
        assert report.steps[0] == "detection: done"
        # Without the sweep, the flush says what it waited for in vain.
        again = factories.recording(deployment.id)
        store.store_recording(again)
        report = QueueFlusher(
            app, store, every_recording_detected=True, poll_s=0.05, can_send=lambda: False
        ).flush(deployment, timeout_s=0.5)
        assert report.left[0] == (
            "detection: 1 recording(s) without a model output (of every required model)"
        )


def test_a_stop_waits_for_every_required_extra_model(app, storage_target):
    from acoustack.program_config import DetectionConfig

    section = DetectionConfig.model_validate(
        {"extra_models": [{"model": "grpc://127.0.0.1:50061", "name": "energy-band"}]}
    )
    with StoreClient(storage_target) as store:
        deployment = schema.Deployment(name="meadow")
        store.start_deployment("meadow", deployment_id=deployment.id)
        recording = factories.recording(deployment.id)
        store.store_recording(recording)
        store.store_model_output(factories.model_output(recording.id))  # the main model's only
        flusher = QueueFlusher(
            app, store, every_recording_detected=True, processed=section.is_processed,
            poll_s=0.05, can_send=lambda: False,
        )  # fmt: skip
        assert flusher._undetected(deployment) == (
            "1 recording(s) without a model output (of every required model)"
        )
        store.store_model_output(factories.model_output(recording.id, model_name="energy-band"))
        assert flusher._undetected(deployment) is None


def test_the_flush_waits_only_for_due_messages_and_names_those_left_waiting(app, storage_target):
    """A message backing off after a failed try is not tried again before its time, however
    often a run is asked for: the flush does not wait for it, and says it is left."""
    from acoustack.v1 import store_pb2

    with StoreClient(storage_target) as store:
        waiting, dead = schema.Message(content="{}"), schema.Message(content="[]")
        for message, refused in ((waiting, False), (dead, True)):
            store.store_message(message)
            store.store_response(
                schema.Response(
                    message_id=message.id,
                    status=schema.ResponseStatus.FAILED if refused else schema.ResponseStatus.ERROR,
                ),
                store_pb2.TryOutcome(refused=refused, retry_in_s=600, dead_after_refusals=1),
            )
        flusher = QueueFlusher(app, store, poll_s=0.1)
        app.amqp.queues[Queue.DEFAULT.value].bind(
            app.connection_for_write().default_channel
        ).purge()
        assert flusher._outbox_empty() is None
        assert flusher._outbox_waiting() == (
            "1 message(s) backing off after failed tries, 1 dead letter(s) (acoustack messages)"
        )
        store.store_message(schema.Message(content="due"))
        assert flusher._outbox_empty() == "1 message(s) unsent"
