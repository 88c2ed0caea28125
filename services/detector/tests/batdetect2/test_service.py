"""The detector as a process (python -m acoustack_detector): bundled BatDetect2 served over gRPC
while detect tasks run from RabbitMQ, and a custom model server plugged in by DETECTOR_MODEL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import grpc

from acoustack.celery_app import create_app
from acoustack.clients import StoreClient
from acoustack.healthcheck import check
from acoustack.names import Queue, Task
from acoustack.self_check import ask
from acoustack.testing.servers import free_port
from acoustack.v1 import model_pb2, model_pb2_grpc


def start_detector(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "acoustack_detector"],
        env={
            **os.environ,
            "DETECTOR_GRPC_HOST": "127.0.0.1",
            "DETECTOR_GRPC_PORT": str(port),
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    target = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not check(target)[0]:
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "the detector never reported SERVING"
        time.sleep(0.2)
    return proc, target


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    return output


def fresh_app(rabbitmq):
    app = create_app(rabbitmq.url)
    with app.connection_for_write() as connection:
        app.amqp.queues[Queue.DETECTION.value].bind(connection).declare()
        app.amqp.queues[Queue.DETECTION.value].bind(connection).purge()
    return app


def detect_and_wait(app, store, recording_id, timeout_s=60):
    app.send_task(Task.DETECT.value, args=[str(recording_id)])
    deadline = time.monotonic() + timeout_s
    while not (
        outputs := store.get_recording(recording_id, include_model_outputs=True).model_outputs
    ):
        assert time.monotonic() < deadline, "no model output was stored"
        time.sleep(0.2)
    return outputs


def test_the_bundled_detector_serves_model_and_works_the_queue(
    rabbitmq, storage_target, model_dir, recordings_root, make_recording, bundled_model
):
    app = fresh_app(rabbitmq)
    proc, target = start_detector({
        "DETECTOR_BROKER_URL": rabbitmq.url,
        "DETECTOR_STORAGE_TARGET": storage_target,
        "DETECTOR_MODEL_DIR": str(model_dir),
        "DETECTOR_RECORDINGS_ROOT": str(recordings_root),
        "DETECTOR_CHECK_FILE": str(next(recordings_root.glob("*.wav"))),
    })  # fmt: skip
    try:
        # The self-check `acoustack check` runs: the model finds the calls of a known recording;
        # a program asking for another model is told how to make them agree.
        (model,) = ask("detector", target, {"detection": {"model": "batdetect2"}})
        assert model.ok, model.detail
        assert model.component == "detector: model"
        assert "found" in model.detail and "call(s)" in model.detail
        mismatch = ask("detector", target, {"detection": {"model": "grpc://birds:50060"}})
        assert [r.ok for r in mismatch] == [False, True]
        assert "set DETECTOR_MODEL=grpc://birds:50060" in mismatch[0].detail
        info = model_pb2_grpc.ModelStub(grpc.insecure_channel(target)).Info(
            model_pb2.InfoRequest(), timeout=10
        )
        assert (info.name, len(info.classes)) == (bundled_model.name, 17)
        with StoreClient(storage_target) as store:
            deployment = store.start_deployment("meadow", 52.2, 0.12)
            recording = make_recording(next(recordings_root.glob("*.wav")), deployment.id)
            store.store_recording(recording)
            outputs = detect_and_wait(app, store, recording.id)
            assert outputs[0].model_name == bundled_model.name
            assert all(d.detection_score >= 0.2 for d in outputs[0].detections)
            assert len(store.get_unsent_messages()) == 1  # the whole output, by default
    finally:
        stop(proc)


def test_a_custom_model_server_replaces_the_bundled_model(
    rabbitmq, storage_target, example_server, recordings_root, make_recording
):
    app = fresh_app(rabbitmq)
    proc, target = start_detector({
        "DETECTOR_BROKER_URL": rabbitmq.url,
        "DETECTOR_STORAGE_TARGET": storage_target,
        "DETECTOR_MODEL": f"grpc://{example_server}",
    })  # fmt: skip
    try:
        (model,) = ask("detector", target, {})
        assert model.ok and f"model server {example_server} answers: energy-band" in model.detail
        with StoreClient(storage_target) as store:
            deployment = store.start_deployment("meadow", 52.2, 0.12)
            recording = make_recording(next(recordings_root.glob("*.wav")), deployment.id)
            store.store_recording(recording)
            outputs = detect_and_wait(app, store, recording.id)
            assert outputs[0].model_name == "energy-band"
    finally:
        stop(proc)


def test_bad_settings_name_the_variable():
    proc = subprocess.run(
        [sys.executable, "-m", "acoustack_detector"],
        env={
            **os.environ,
            "DETECTOR_BROKER_URL": "amqp://x",
            "DETECTOR_MODEL": "http://model:80",
            "DETECTOR_THRESHOLD": "1.5",
        },
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "DETECTOR_MODEL: String should match pattern" in proc.stderr
    assert "batdetect2 (the bundled model) or grpc://host:port" in proc.stderr
    assert "DETECTOR_THRESHOLD: Input should be less than or equal to 1" in proc.stderr
