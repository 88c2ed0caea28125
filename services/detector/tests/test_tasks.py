"""The detect task on a real RabbitMQ vhost with a real worker, storage service and Postgres."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker

from acoustack.celery_app import create_app
from acoustack.clients import StoreClient
from acoustack.components import ThresholdDetectionCleaner
from acoustack.names import Queue, Task
from acoustack.testing import factories
from acoustack_detector.local_model import LocalModel
from acoustack_detector.pipeline import DetectionPipeline
from acoustack_detector.tasks import register_detect_task


@pytest.fixture
def app(rabbitmq):
    app = create_app(rabbitmq.url)
    # Without heartbeats the in-thread test worker stops in about a second instead of ten.
    app.conf.broker_heartbeat = 0
    with app.connection_for_write() as connection:
        app.amqp.queues[Queue.DETECTION.value].bind(connection).declare()
        app.amqp.queues[Queue.DETECTION.value].bind(connection).purge()
    return app


@pytest.fixture
def store(storage_target):
    with StoreClient(storage_target) as client:
        yield client


@pytest.fixture
def worker(app, store, band_energy_model):
    register_detect_task(
        app,
        lambda: DetectionPipeline(
            store=store,
            model=LocalModel(band_energy_model),
            output_cleaners=[ThresholdDetectionCleaner()],
        ),
    )
    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        queues=[Queue.DETECTION.value],
        perform_ping_check=False,
        shutdown_timeout=3,
    ) as running:
        yield running


def wait_for(condition, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_a_queued_recording_is_detected_and_a_redelivery_stores_nothing_twice(
    app, worker, store, recordings_root, make_recording
):
    deployment = store.start_deployment("meadow", 52.2, 0.12)
    recording = make_recording(next(recordings_root.glob("*.wav")), deployment.id)
    store.store_recording(recording)
    # The same task twice, as a broker redelivers after a worker died before acknowledging.
    for _ in range(2):
        app.send_task(Task.DETECT.value, args=[str(recording.id)])
    outputs = wait_for(
        lambda: store.get_recording(recording.id, include_model_outputs=True).model_outputs
    )
    time.sleep(1.0)  # let the second delivery run too
    outputs = store.get_recording(recording.id, include_model_outputs=True).model_outputs
    assert len(outputs) == 1
    assert len(store.list_detections()) == len(outputs[0].detections) > 0


def test_an_unreadable_file_marks_the_recording_failed_and_the_worker_goes_on(
    app, worker, store, recordings_root, make_recording, tmp_path
):
    deployment = store.start_deployment("meadow", 52.2, 0.12)
    broken = recordings_root / "broken.wav"
    broken.write_bytes(b"not audio at all")
    bad = factories.recording(deployment.id, path=str(broken))
    good = make_recording(next(recordings_root.glob("2017*.wav")), deployment.id)
    store.store_recording(bad)
    store.store_recording(good)
    app.send_task(Task.DETECT.value, args=[str(bad.id)])
    app.send_task(Task.DETECT.value, args=[str(good.id)])
    wait_for(lambda: store.get_recording(good.id, include_model_outputs=True).model_outputs)
    failed = store.get_recording(bad.id).recording
    assert failed.failure_reason.startswith("detection: ")
    assert "broken.wav" in failed.failure_reason
