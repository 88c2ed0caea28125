"""The messenger as a process (python -m acoustack_messenger) with a real RabbitMQ vhost, the real
storage service, Mosquitto and an HTTP server: tasks sent through Celery, SelfCheck over gRPC."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from acoustack import schema, self_check
from acoustack.celery_app import create_app
from acoustack.healthcheck import check
from acoustack.names import Queue, Task
from acoustack.testing.servers import free_port
from acoustack.v1 import types_pb2 as pb


def start_messenger(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "acoustack_messenger"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(condition: Callable[[], object], what: str, proc: subprocess.Popen, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        assert proc.poll() is None, f"the messenger exited while waiting for {what}"
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        time.sleep(0.1)
    return result


@pytest.fixture
def celery(rabbitmq):
    app = create_app(rabbitmq.url)
    with app.connection_for_write() as connection:
        queue = app.amqp.queues[Queue.DEFAULT.value].bind(connection)
        queue.declare()
        queue.purge()  # the vhost is the run's: leave nothing of other tests for this worker
    return app


@pytest.fixture
def messenger(celery, rabbitmq, storage_target, tmp_path) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    proc = start_messenger({
        "MESSENGER_BROKER_URL": rabbitmq.url,
        "MESSENGER_STORAGE_TARGET": storage_target,
        "MESSENGER_GRPC_HOST": "127.0.0.1",
        "MESSENGER_GRPC_PORT": str(port),
        "MESSENGER_DATA_DIR": str(tmp_path / "data"),
    })  # fmt: skip
    target = f"127.0.0.1:{port}"
    try:
        wait_for(lambda: check(target)[0], "health SERVING", proc)
        yield target, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
        print(output)  # shown when a test fails
    assert proc.returncode == 0, output


def test_messages_go_out_through_celery_and_the_responses_are_stored(
    messenger, celery, store, mqtt_broker, subscriber, topic, http_sink
):
    _target, proc = messenger
    sent = schema.Message(content=json.dumps({"species": "Myotis", "score": 0.93}))
    store.store_message(sent)
    config = {
        "messaging": {
            "mqtt_host": mqtt_broker.host,
            "mqtt_port": mqtt_broker.port,
            "mqtt_topic": topic,
            "http_url": f"{http_sink.url}/ok",
        },
        "heartbeat": {"interval_s": 60},
    }
    celery.send_task(Task.SEND_MESSAGES.value, kwargs={"program_config": config})
    received = subscriber.next(timeout_s=30, topic=topic)
    assert received.payload == sent.content.encode()
    assert received.user_properties["message_id"] == str(sent.id)
    device = received.user_properties["device_id"]
    assert device == store.device_id()  # the device's one id, which storage owns
    responses = wait_for(lambda: store.list_responses(sent.id)[1:], "two stored responses", proc)
    assert {r.status for r in store.list_responses(sent.id)} == {pb.RESPONSE_STATUS_SUCCESS}
    assert len(responses) == 1
    assert store.get_unsent_messages() == []
    # The worker keeps its broker connection: availability says online.
    assert subscriber.next(topic=f"{topic}/availability/{device}").payload == b"online"

    celery.send_task(Task.HEARTBEAT.value, kwargs={"program_config": config})
    beat = json.loads(subscriber.next(timeout_s=30, topic=topic).payload)
    assert beat["device_id"] == device
    assert {m["name"] for m in beat["metrics"]} >= {"free_storage", "process_cpu"}

    # A warm shutdown: the worker's disconnect makes the broker publish the will.
    proc.send_signal(signal.SIGTERM)
    assert subscriber.next(timeout_s=30, topic=f"{topic}/availability/{device}").payload == (
        b"offline"
    )


def test_the_soft_time_limit_interrupts_a_send_that_hangs(messenger, celery, store, silent_server):
    """A server that never answers, with a 120 s HTTP timeout: the task's soft limit (sent with
    it, as the scheduler does) stops the send after about 1 s, and the attempt is stored."""
    _target, proc = messenger
    sent = schema.Message(content="{}")
    store.store_message(sent)
    config = {
        "messaging": {"http_url": f"http://127.0.0.1:{silent_server}/", "http_timeout_s": 120}
    }
    started = time.monotonic()
    celery.send_task(
        Task.SEND_MESSAGES.value,
        kwargs={"program_config": config},
        soft_time_limit=1,
        time_limit=30,
    )
    [response] = wait_for(lambda: store.list_responses(sent.id), "a stored response", proc)
    assert time.monotonic() - started < 20
    assert response.status == pb.RESPONSE_STATUS_ERROR
    assert "SoftTimeLimitExceeded" in response.content
    [waiting] = store.list_messages(schema.MessageState.BACKING_OFF)  # tried again later
    assert waiting.message.id == str(sent.id)


def test_self_check_gives_a_verdict_per_messenger(messenger, mqtt_broker, http_sink, closed_port):
    target, _proc = messenger
    config = {
        "messaging": {
            "mqtt_host": mqtt_broker.host,
            "mqtt_port": mqtt_broker.port,
            "http_url": f"http://127.0.0.1:{closed_port}/in",
        }
    }
    results = self_check.ask("messenger", target, config)
    by_component = {r.component: r for r in results}
    assert set(by_component) == {
        f"messenger: http 127.0.0.1:{closed_port}",
        f"messenger: mqtt {mqtt_broker.host}:{mqtt_broker.port}",
    }
    assert by_component[f"messenger: mqtt {mqtt_broker.host}:{mqtt_broker.port}"].ok
    http = by_component[f"messenger: http 127.0.0.1:{closed_port}"]
    assert not http.ok and "Connection refused" in http.detail
    config["messaging"]["http_url"] = f"{http_sink.url}/ok"
    assert all(r.ok for r in self_check.ask("messenger", target, config))
    [none] = self_check.ask("messenger", target, {"messaging": {}})
    assert none.ok
    assert none.detail == "no messenger configured: messages stay in the outbox"
    [bad] = self_check.ask("messenger", target, {"messaging": {"mqtt_port": 0}})
    assert not bad.ok and "messaging.mqtt_port: Input should be greater than or equal to 1" in (
        bad.detail
    )


def test_bad_settings_stop_the_messenger_naming_the_variable():
    proc = start_messenger({
        "MESSENGER_BROKER_URL": "redis://nope",
        "MESSENGER_GRPC_PORT": "fifty",
        "MESSENGER_TASK_SOFT_TIME_LIMIT_S": "100",
        "MESSENGER_TASK_TIME_LIMIT_S": "50",
        "MESSENGER_SHUTDOWN_GRACE_S": "30",
    })  # fmt: skip
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "MESSENGER_BROKER_URL: String should match pattern" in output
    assert "MESSENGER_GRPC_PORT: Input should be a valid integer" in output
    # No longer settings: the service stops rather than ignore them.
    assert (
        "MESSENGER_TASK_TIME_LIMIT_S: no longer a setting; a task's time limits are part of its "
        "contract"
    ) in output
    assert (
        "MESSENGER_SHUTDOWN_GRACE_S: no longer a setting; on SIGTERM the task in progress finishes"
    ) in output


def test_a_grpc_port_already_taken_stops_the_messenger_naming_it(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        proc = start_messenger({
            "MESSENGER_BROKER_URL": "amqp://x",
            "MESSENGER_GRPC_HOST": "127.0.0.1",
            "MESSENGER_GRPC_PORT": str(port),
            "MESSENGER_DATA_DIR": str(tmp_path),
        })  # fmt: skip
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert f"MESSENGER_GRPC_PORT: port {port} is taken" in output
