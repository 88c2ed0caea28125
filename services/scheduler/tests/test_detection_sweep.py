"""The detection sweep on real storage and a real RabbitMQ vhost: a recording left without a model
output gets its `detect` again, once the detection queue has been empty long enough."""

from __future__ import annotations

import json

import pytest

from acoustack import schema
from acoustack.clients import StoreClient
from acoustack.names import Queue, Task
from acoustack.testing import factories
from acoustack.v1 import types_pb2 as pb
from acoustack_scheduler.broker import queue_depths
from acoustack_scheduler.detection_sweep import DetectionSweep


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def detect_tasks_queued(app) -> list[str]:
    """The recording ids of the detect tasks waiting (taken off the queue)."""
    ids = []
    with app.connection_for_write() as connection:
        queue = app.amqp.queues[Queue.DETECTION.value].bind(connection.default_channel)
        while (message := queue.get(no_ack=True)) is not None:
            assert message.headers["task"] == Task.DETECT.value
            ids.append(json.loads(message.body)[0][0])
    return ids


@pytest.fixture
def store(storage_target):
    with StoreClient(storage_target) as client:
        yield client


def sweep_for(app, store, clock, **kwargs) -> DetectionSweep:
    return DetectionSweep(
        store,
        lambda recording_id: app.send_task(Task.DETECT.value, args=[recording_id]),
        lambda: queue_depths(app, [Queue.DETECTION.value])[Queue.DETECTION.value],
        clock=clock,
        **kwargs,
    )


def test_a_recording_left_without_output_gets_detect_again_then_is_marked_failed(app, store):
    deployment = schema.Deployment(name="meadow")
    store.start_deployment("meadow", deployment_id=deployment.id)
    lost = factories.recording(deployment.id)  # stored, but its detect never sent
    detected = factories.recording(deployment.id)
    for recording in (lost, detected):
        store.store_recording(recording)
    store.store_model_output(factories.model_output(detected.id))
    clock = Clock()
    sweep = sweep_for(app, store, clock, after_s=600, max_attempts=2)

    first = sweep.run()
    assert first.waiting == 1 and first.resent == []  # its clock starts now
    clock.now += 599
    assert sweep.run().resent == []
    clock.now += 1
    assert sweep.run().resent == [str(lost.id)]
    # The task is in the queue, as the detector's worker would take it.
    assert detect_tasks_queued(app) == [str(lost.id)]

    # Once more after another quiet spell; then it is given up with the reason.
    clock.now += 600
    assert sweep.run().resent == [str(lost.id)]
    detect_tasks_queued(app)
    clock.now += 600
    report = sweep.run()
    assert report.failed == [str(lost.id)] and report.resent == []
    failed = store.get_recording(lost.id).recording
    assert failed.status == pb.RECORDING_STATUS_FAILED
    assert "no model output after 2" in failed.failure_reason
    assert sweep.run().waiting == 0


def test_while_detect_tasks_wait_in_the_queue_no_clock_runs(app, store):
    deployment = schema.Deployment(name="meadow")
    store.start_deployment("meadow", deployment_id=deployment.id)
    slow = factories.recording(deployment.id)
    store.store_recording(slow)
    clock = Clock()
    sweep = sweep_for(app, store, clock, after_s=600)
    sweep.run()
    clock.now += 500
    app.send_task(Task.DETECT.value, args=["a backlog"])  # its task may be among these
    report = sweep.run()
    assert report.skipped == "1 detection task(s) queued"
    detect_tasks_queued(app)
    clock.now += 500  # 1000 s since first seen, but only 0 s since the queue was last seen empty
    assert sweep.run().resent == []
    clock.now += 600
    assert sweep.run().resent == [str(slow.id)]


def test_a_recording_that_gets_its_output_is_forgotten(app, store):
    deployment = schema.Deployment(name="meadow")
    store.start_deployment("meadow", deployment_id=deployment.id)
    late = factories.recording(deployment.id)
    store.store_recording(late)
    clock = Clock()
    sweep = sweep_for(app, store, clock, after_s=600)
    sweep.run()
    clock.now += 300
    store.store_model_output(factories.model_output(late.id))
    assert sweep.run().waiting == 0
    clock.now += 600
    assert sweep.run().resent == []
    assert detect_tasks_queued(app) == []


def test_a_recording_still_missing_a_required_models_output_gets_detect_again(app, store):
    """detection.extra_models: the main model's output alone is not enough while a required
    extra model's is missing; an optional model's is never waited for."""
    from acoustack.program_config import DetectionConfig

    section = DetectionConfig.model_validate(
        {"extra_models": [
            {"model": "grpc://127.0.0.1:50061", "name": "energy-band"},
            {"model": "grpc://127.0.0.1:50062", "name": "optional", "required": False},
        ]}
    )  # fmt: skip
    deployment = schema.Deployment(name="meadow")
    store.start_deployment("meadow", deployment_id=deployment.id)
    half, whole = factories.recording(deployment.id), factories.recording(deployment.id)
    for recording in (half, whole):
        store.store_recording(recording)
    store.store_model_output(factories.model_output(half.id))  # main model only
    for name in ("batdetect2", "energy-band"):
        store.store_model_output(factories.model_output(whole.id, model_name=name))
    clock = Clock()
    sweep = sweep_for(app, store, clock, after_s=600, processed=section.is_processed)
    assert sweep.run().waiting == 1
    clock.now += 600
    assert sweep.run().resent == [str(half.id)]
    assert detect_tasks_queued(app) == [str(half.id)]
