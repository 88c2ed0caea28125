"""The detector as a process (python -m acoustack_detector): bundled BatDetect2 served over gRPC
while detect tasks run from RabbitMQ, and a custom model server plugged in by the program's
detection.model, at the next task, with no restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc

from acoustack.celery_app import create_app, send
from acoustack.clients import StoreClient
from acoustack.healthcheck import check
from acoustack.names import DetectArguments, Queue
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


def child_pids(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


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


def detect_and_wait(app, store, recording_id, program_config=None, timeout_s=60):
    send(app, DetectArguments(recording_id=recording_id, program_config=program_config or {}))
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
        "ACOUSTACK_MODEL_DIR": str(model_dir),
        "DETECTOR_RECORDINGS_ROOT": str(recordings_root),
        "DETECTOR_CHECK_FILE": str(next(recordings_root.glob("*.wav"))),
    })  # fmt: skip
    try:
        # The self-check `acoustack check` runs: the model finds the calls of a known recording;
        # a program naming a model server that does not answer is told so, by address.
        (model,) = ask("detector", target, {"detection": {"model": "batdetect2"}})
        assert model.ok, model.detail
        assert model.component == "detector: model"
        assert "found" in model.detail and "call(s)" in model.detail
        unreachable = f"grpc://127.0.0.1:{free_port()}"
        (elsewhere,) = ask("detector", target, {"detection": {"model": unreachable}})
        assert not elsewhere.ok and unreachable.removeprefix("grpc://") in elsewhere.detail
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
        # One worker is two processes: the worker and its pool child, which served the calls above.
        (child,) = child_pids(proc.pid)
        assert child_pids(child) == []
    finally:
        output = stop(proc)
    # The self-check, Info and the detection used one model: loaded once.
    assert output.count(f"bundled model {bundled_model.name}") == 1, output[-3000:]


def test_a_custom_model_server_replaces_the_bundled_model_at_the_next_task(
    rabbitmq, storage_target, example_server, model_dir, recordings_root, make_recording
):
    app = fresh_app(rabbitmq)
    proc, target = start_detector({
        "DETECTOR_BROKER_URL": rabbitmq.url,
        "DETECTOR_STORAGE_TARGET": storage_target,
        "ACOUSTACK_MODEL_DIR": str(model_dir),
    })  # fmt: skip
    server = {"detection": {"model": f"grpc://{example_server}"}}
    try:
        (model,) = ask("detector", target, server)
        assert model.ok and f"model server {example_server} answers: energy-band" in model.detail
        with StoreClient(storage_target) as store:
            deployment = store.start_deployment("meadow", 52.2, 0.12)
            wav = next(recordings_root.glob("*.wav"))
            first = make_recording(wav, deployment.id)
            store.store_recording(first)
            assert detect_and_wait(app, store, first.id)[0].model_name != "energy-band"
            store.mark_recording_deleted(first.id)  # its file is the next recording's
            second = make_recording(wav, deployment.id)
            store.store_recording(second)
            outputs = detect_and_wait(app, store, second.id, server)
            assert outputs[0].model_name == "energy-band"
    finally:
        stop(proc)


def test_bad_settings_name_the_variable_and_removed_ones_what_replaced_them():
    proc = subprocess.run(
        [sys.executable, "-m", "acoustack_detector"],
        env={
            **os.environ,
            "DETECTOR_BROKER_URL": "amqp://x",
            "DETECTOR_CONCURRENCY": "many",
            "DETECTOR_MODEL": "grpc://model:50060",
            "DETECTOR_THRESHOLD": "0.9",
        },
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "DETECTOR_CONCURRENCY: Input should be a valid integer" in proc.stderr
    # Set but no longer read: the service stops rather than ignore it.
    assert "DETECTOR_MODEL: no longer a setting; the program's detection.model replaced it" in (
        proc.stderr
    )
    assert "acoustack config set --field detection.threshold VALUE" in proc.stderr


def test_a_grpc_port_already_taken_stops_the_detector_naming_it():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "acoustack_detector"],
            env={**os.environ, "DETECTOR_BROKER_URL": "amqp://x", "DETECTOR_GRPC_HOST": "127.0.0.1",
                 "DETECTOR_GRPC_PORT": str(port)},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 2
    assert f"DETECTOR_GRPC_PORT: port {port} is taken" in proc.stderr
    assert "choose a free one" in proc.stderr
