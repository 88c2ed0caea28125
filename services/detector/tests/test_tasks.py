"""The detect task on a real RabbitMQ vhost with a real worker, storage service and Postgres: the
program's `detection` section the task carries decides what is stored and messaged; unusable
arguments are refused by name and acknowledged."""

from __future__ import annotations

import json
import shutil
import threading
import time

import grpc
import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun

from acoustack.celery_app import REJECTED_TASKS, create_app, send
from acoustack.clients import StoreClient
from acoustack.errors import FailedPreconditionError
from acoustack.names import DetectArguments, Queue, Task
from acoustack.testing import factories
from acoustack_detector.pipeline import Detector
from acoustack_detector.remote_model import ModelRetryPolicy
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


class Finished:
    """What each detect run returned, as the worker finished it (in order)."""

    def __init__(self) -> None:
        self.results: list[dict] = []
        self._lock = threading.Lock()

    def __call__(self, sender=None, retval=None, **_):
        if getattr(sender, "name", None) == Task.DETECT.value:
            with self._lock:
                self.results.append(retval)

    def wait(self, count: int, timeout_s: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.results) >= count:
                    return list(self.results)
            time.sleep(0.05)
        raise AssertionError(f"{count} detect run(s) expected, {len(self.results)} finished")


@pytest.fixture
def finished():
    seen = Finished()
    task_postrun.connect(seen, weak=False)
    yield seen
    task_postrun.disconnect(seen)


def running_worker(app, detector: Detector):
    """A worker in this process on the detection queue, running ``detector``'s tasks."""
    register_detect_task(app, lambda: detector)
    return start_worker(
        app,
        pool="solo",
        concurrency=1,
        queues=[Queue.DETECTION.value],
        perform_ping_check=False,
        shutdown_timeout=3,
    )


@pytest.fixture
def worker(app, store, band_energy_model):
    # The bundled model, as the program's detection.model "batdetect2" asks for, is here the
    # example's band-energy detector: fast, and it finds calls in the real recordings.
    with running_worker(app, Detector(store, lambda: band_energy_model)) as running:
        yield running


@pytest.fixture
def quick_retry_worker(app, store, band_energy_model):
    """A worker whose model-server retries come fast (the contract's backoff, scaled down)."""
    detector = Detector(
        store,
        lambda: band_energy_model,
        model_retry=ModelRetryPolicy(attempts=3, first_delay_s=0.05, max_delay_s=0.1),
        model_call_timeout_s=0.5,
    )
    with running_worker(app, detector) as running:
        yield running


def detect(app, recording_id, **program_config):
    send(app, DetectArguments(recording_id=recording_id, program_config=program_config))


def test_a_queued_recording_is_detected_and_a_redelivery_stores_nothing_twice(
    app, worker, store, finished, recordings_root, make_recording
):
    deployment = store.start_deployment("meadow", 52.2, 0.12)
    recording = make_recording(next(recordings_root.glob("*.wav")), deployment.id)
    store.store_recording(recording)
    # The same task twice, as a broker redelivers after a worker died before acknowledging.
    for _ in range(2):
        detect(app, recording.id)
    first, second = finished.wait(2)  # the redelivery itself has run
    assert (first["outcome"], second["outcome"]) == ("stored", "already stored")
    outputs = store.get_recording(recording.id, include_model_outputs=True).model_outputs
    assert len(outputs) == 1
    assert len(store.list_detections()) == len(outputs[0].detections) > 0


def test_the_programs_thresholds_decide_what_is_stored_and_messaged(
    app, worker, store, finished, recordings_root, make_recording
):
    """`config set --field detection.threshold 0.9` must act: the task carries the section."""
    deployment = store.start_deployment("meadow", 52.2, 0.12)
    wav = next(recordings_root.glob("*.wav"))
    copy = recordings_root / "copy.wav"
    shutil.copy(wav, copy)  # every recording has a file of its own
    loose, strict = make_recording(wav, deployment.id), make_recording(copy, deployment.id)
    for recording in (loose, strict):
        store.store_recording(recording)
    detect(app, loose.id, detection={"threshold": 0.2})
    detect(app, strict.id, detection={"threshold": 0.9, "message_threshold": 0.95})
    finished.wait(2)

    def scores(recording):
        output = store.get_recording(recording.id, include_model_outputs=True).model_outputs[0]
        return [d.detection_score for d in output.detections]

    assert scores(loose) and min(scores(loose)) >= 0.2
    assert all(score >= 0.9 for score in scores(strict))
    assert len(scores(strict)) < len(scores(loose))
    messages = [json.loads(m.content) for m in store.get_unsent_messages()]
    by_recording = {m["recording_id"]: m for m in messages}
    # No message threshold: the whole output; with one: only what reaches it, or no message.
    assert len(by_recording[str(loose.id)]["detections"]) == len(scores(loose))
    strict_message = by_recording.get(str(strict.id))
    assert strict_message is None or all(
        d["detection_score"] >= 0.95 for d in strict_message["detections"]
    )


def test_unusable_arguments_are_refused_by_name_acknowledged_and_counted(
    app, worker, store, finished, recordings_root, make_recording, caplog
):
    deployment = store.start_deployment("meadow", 52.2, 0.12)
    good = make_recording(next(recordings_root.glob("*.wav")), deployment.id)
    store.store_recording(good)
    before = REJECTED_TASKS[Task.DETECT.value]
    app.send_task(Task.DETECT.value, args=[str(good.id)])  # positional, as an old sender did
    app.send_task(
        Task.DETECT.value,
        kwargs={"recording_id": str(good.id), "program_config": {"detection": {"threshold": 2}}},
    )
    detect(app, good.id)
    results = finished.wait(3)
    assert [r["outcome"] for r in results] == ["rejected", "rejected", "stored"]
    assert "keyword arguments only" in results[0]["reason"]
    assert "program_config.detection.threshold" in results[1]["reason"]
    assert REJECTED_TASKS[Task.DETECT.value] == before + 2
    assert "program_config.detection.threshold: Input should be less than or equal to 1" in (
        caplog.text
    )
    # Acknowledged: nothing is left in the queue to come back.
    time.sleep(0.5)
    with app.connection_for_read() as connection:
        queue = app.amqp.queues[Queue.DETECTION.value].bind(connection.default_channel)
        assert queue.queue_declare(passive=True).message_count == 0


def test_an_unreadable_file_marks_the_recording_failed_and_the_worker_goes_on(
    app, worker, store, finished, recordings_root, make_recording
):
    deployment = store.start_deployment("meadow", 52.2, 0.12)
    broken = recordings_root / "broken.wav"
    broken.write_bytes(b"not audio at all")
    bad = factories.recording(deployment.id, path=str(broken))
    good = make_recording(next(recordings_root.glob("2017*.wav")), deployment.id)
    store.store_recording(bad)
    store.store_recording(good)
    detect(app, bad.id)
    detect(app, good.id)
    assert [r["outcome"] for r in finished.wait(2)] == ["failed", "stored"]
    failed = store.get_recording(bad.id).recording
    assert failed.failure_reason.startswith("detection: ")
    assert "broken.wav" in failed.failure_reason


@pytest.fixture
def registered(store, recordings_root, make_recording):
    deployment = store.start_deployment("meadow", 52.2, 0.12)
    recording = make_recording(next(recordings_root.glob("2017*.wav")), deployment.id)
    store.store_recording(recording)
    return recording


def ended(results: list) -> list[dict]:
    """The runs that ended the task (a run that asked for a retry returns celery's Retry)."""
    return [r for r in results if isinstance(r, dict)]


def run_against(app, finished, registered, target, count):
    detect(app, registered.id, detection={"model": f"grpc://{target}"})
    return finished.wait(count)


@pytest.mark.parametrize("answer", [grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE, "hang"])
def test_a_failing_model_server_is_tried_a_bounded_number_of_times_then_the_recording_fails(
    app, quick_retry_worker, store, finished, registered, scripted_server, answer
):
    target, server = scripted_server
    server.answers = [answer]
    results = ended(run_against(app, finished, registered, target, 1))
    deadline = time.monotonic() + 20
    while not results and time.monotonic() < deadline:
        time.sleep(0.05)
        results = ended(finished.results)
    assert [r["outcome"] for r in results] == ["failed"], finished.results
    assert server.calls == 3  # attempts in all, then no more
    failed = store.get_recording(registered.id).recording
    assert failed.failure_reason.startswith(f"detection: model server {target}: Detect: ")
    code = "DEADLINE_EXCEEDED" if answer == "hang" else answer.name
    assert code in failed.failure_reason and "(after 3 attempts)" in failed.failure_reason


def test_a_model_server_that_comes_back_gets_the_recording_stored(
    app, quick_retry_worker, store, finished, registered, scripted_server
):
    target, server = scripted_server
    server.answers = [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.FAILED_PRECONDITION,
        server.good_output(),
    ]
    run_against(app, finished, registered, target, 1)
    deadline = time.monotonic() + 20
    while not ended(finished.results):
        assert time.monotonic() < deadline, finished.results
        time.sleep(0.05)
    assert [r["outcome"] for r in ended(finished.results)] == ["stored"]
    assert server.calls == 3
    outputs = store.get_recording(registered.id, include_model_outputs=True).model_outputs
    assert [(o.model_name, len(o.detections)) for o in outputs] == [("scripted", 4)]


@pytest.mark.parametrize("answer", [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND])
def test_a_refusing_model_server_fails_the_recording_at_once(
    app, quick_retry_worker, store, finished, registered, scripted_server, answer
):
    target, server = scripted_server
    server.answers = [answer]
    (result,) = run_against(app, finished, registered, target, 1)
    assert result["outcome"] == "failed" and server.calls == 1
    reason = store.get_recording(registered.id).recording.failure_reason
    assert f"{answer.name}: scripted" in reason
    if answer is grpc.StatusCode.NOT_FOUND:
        assert "detection.model_send_audio" in reason  # what to do about it


def test_a_malformed_output_fails_the_recording_naming_the_field(
    app, quick_retry_worker, store, finished, registered, scripted_server
):
    target, server = scripted_server
    output = server.good_output(5)
    output.detections[3].detection_score = 1.7
    server.answers = [output]
    (result,) = run_against(app, finished, registered, target, 1)
    assert result["outcome"] == "failed" and server.calls == 1
    reason = store.get_recording(registered.id).recording.failure_reason
    assert "detections[3].detection_score: 1.7 is above 1" in reason
    assert store.get_recording(registered.id, include_model_outputs=True).model_outputs == []


def test_extra_models_run_beside_the_main_one_each_with_its_rules(
    app, quick_retry_worker, store, finished, registered, scripted_server, example_server
):
    """detection.extra_models: the example server beside the bundled model (here the band-energy
    detector), each stored, thresholded and messaged on its own; an optional model that refuses
    costs the recording nothing."""
    target, server = scripted_server
    server.answers = [grpc.StatusCode.INVALID_ARGUMENT]
    section = {
        "threshold": 0.2,
        "extra_models": [
            {"model": f"grpc://{example_server}", "name": "energy-band-remote",
             "threshold": 0.9, "message_threshold": 0.95},
            {"model": f"grpc://{target}", "name": "scripted", "required": False},
        ],
    }  # fmt: skip
    detect(app, registered.id, detection=section)
    (result,) = finished.wait(1)
    assert result["outcome"] == "stored"
    assert result["models"] == {
        "batdetect2": "stored", f"grpc://{example_server}": "stored", f"grpc://{target}": "failed"
    }  # fmt: skip
    entry = store.get_recording(registered.id, include_model_outputs=True)
    assert entry.recording.status == 1  # still temporary, not failed: file management files it
    # The example server calls itself energy-band, as the stand-in for the bundled model does:
    # its outputs carry the program's name for it, so both are stored, apart.
    scores = {o.model_name: [d.detection_score for d in o.detections] for o in entry.model_outputs}
    assert set(scores) == {"energy-band", "energy-band-remote"}
    loose, strict = scores["energy-band"], scores["energy-band-remote"]
    assert min(loose) >= 0.2 and all(s >= 0.9 for s in strict) and len(strict) < len(loose)
    # Each model's detections queried on their own.
    assert len(store.list_detections(model_name="energy-band-remote")) == len(strict)
    assert len(store.list_detections(model_name="energy-band")) == len(loose)
    # Each model messaged under its own rules: the extra one only what reaches 0.95.
    messages = [json.loads(m.content) for m in store.get_unsent_messages()]
    by_model = {m["model"]["name"]: m for m in messages}
    assert len(by_model["energy-band"]["detections"]) == len(loose)
    remote = by_model.get("energy-band-remote")
    assert remote is None or all(d["detection_score"] >= 0.95 for d in remote["detections"])


def test_a_required_extra_model_that_refuses_fails_the_recording_and_the_rest_is_kept(
    app, quick_retry_worker, store, finished, registered, scripted_server
):
    target, server = scripted_server
    server.answers = [grpc.StatusCode.INVALID_ARGUMENT]
    section = {"extra_models": [{"model": f"grpc://{target}", "name": "scripted"}]}
    detect(app, registered.id, detection=section)
    (result,) = finished.wait(1)
    assert result["outcome"] == "failed" and result["models"][f"grpc://{target}"] == "failed"
    entry = store.get_recording(registered.id, include_model_outputs=True)
    assert "INVALID_ARGUMENT: scripted" in entry.recording.failure_reason
    assert [o.model_name for o in entry.model_outputs] == ["energy-band"]  # the main model's


def test_a_bundled_model_that_cannot_load_leaves_the_recording_for_later(
    app, store, finished, registered
):
    def not_built():
        raise FailedPreconditionError("the BatDetect2 export is missing", help="run make model")

    with running_worker(app, Detector(store, not_built)):
        detect(app, registered.id)
        (result,) = finished.wait(1)
    assert result["outcome"] == "error" and "run make model" in result["reason"]
    assert store.get_recording(registered.id).recording.status == 1  # temporary: the sweep's
