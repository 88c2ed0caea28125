"""Prometheus scraping each real service, one port each: the five services as local processes on
real Postgres, RabbitMQ and Mosquitto, with their worker processes counting in prometheus-client's
multiprocess mode, as in compose. What a user's Prometheus would see after a few recordings."""

from __future__ import annotations

import secrets
import subprocess
import time
import urllib.request

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from acoustack import cli
from acoustack.clients import StoreClient
from acoustack.testing.servers import free_port
from acoustack_devstack import POSTGRES_ADMIN, SERVICES, DevStack, Ports


@pytest.fixture
def stack(tmp_path):
    stack = DevStack(
        tmp_path,
        name=f"acoustack_metrics_{secrets.token_hex(4)}",
        ports=Ports(free_port(), free_port(), free_port(), free_port(), free_port()),
        program_config={
            "recording": {"duration_s": 1.0, "interval_s": 2.0},
            "messaging": {"interval_s": 2.0},
        },
        metrics_ports={service: free_port() for service in SERVICES},
    )
    try:
        stack.up()
        yield stack
    finally:
        stack.down()
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{stack.name}" WITH (FORCE)')
        subprocess.run(
            ["rabbitmqctl", "-q", "delete_vhost", stack.name], capture_output=True, check=False
        )


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics, by (name, sorted labels); the text must parse as Prometheus'."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = reply.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def stored_model_name(store_target: str) -> str:
    with StoreClient(store_target) as store:
        [entry] = store.list_recordings(include_model_outputs=True, limit=1)
        return entry.model_outputs[0].model_name


def wait_until(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
    return found


@pytest.mark.timeout(240)
def test_each_service_is_scraped_on_its_own_port(stack):
    ports = stack.metrics_ports
    control = ["--control", f"127.0.0.1:{stack.ports.scheduler}"]
    assert cli.main(["deployment", "start", "--name", "metrics", "--skip-checks", *control]) == 0
    with StoreClient(f"127.0.0.1:{stack.ports.storage}") as store:
        wait_until(
            lambda: (
                [e for e in store.list_recordings(include_model_outputs=True) if e.model_outputs]
                and store.count_messages().sent
            ),
            120,
            "a detected recording and a message sent",
        )
        stored = store.list_recordings(limit=1000)
        counts = store.count_messages()
    # The recorder counts its slots in its pool process; the exporter in its main one sums them.
    recorder = wait_until(
        lambda: (
            (s := scrape(ports["recorder"]))
            and value(s, "acoustack_recordings_total", status="recorded") >= 1
            and s
        ),
        30,
        "the recorder's count",
    )
    assert value(recorder, "acoustack_recordings_total", status="recorded") <= len(stored) + 2
    model = stored_model_name(f"127.0.0.1:{stack.ports.storage}")
    inference = ("acoustack_inference_seconds_count", (("model", model),))
    detector = wait_until(
        lambda: (s := scrape(ports["detector"])) and s.get(inference, 0) >= 1 and s,
        30,
        f"the detector's inference time ({inference})",
    )
    runs = detector[inference]
    assert value(detector, "acoustack_inference_seconds_sum", model=model) > 0
    assert value(detector, "acoustack_inference_seconds_bucket", model=model, le="+Inf") == runs
    assert any(name == "acoustack_detections_total" for name, _ in detector)
    messenger = wait_until(
        lambda: (
            (s := scrape(ports["messenger"]))
            and value(s, "acoustack_message_responses_total", status="success") >= 1
            and s
        ),
        30,
        "the messenger's responses",
    )
    assert value(messenger, "acoustack_message_responses_total", status="success") >= counts.sent
    # Storage and the scheduler read theirs when scraped: the database, RabbitMQ.
    storage = scrape(ports["storage"])
    assert value(storage, "acoustack_outbox_messages", state="sent") >= counts.sent
    for state in ("due", "backing_off", "dead", "sent"):
        assert ("acoustack_outbox_messages", (("state", state),)) in storage
    assert 0 <= value(storage, "acoustack_last_recording_age_seconds") < 60
    total = sum(
        value(storage, "acoustack_stored_recordings", status=status)
        for status in ("temporary", "saved", "deleted", "failed")
    )
    assert total >= len(stored)
    assert value(storage, "acoustack_scrape_errors", source="storage database") == 0
    scheduler = scrape(ports["scheduler"])
    for queue in ("recording", "detection", "files", "default"):
        assert ("acoustack_queue_depth", (("queue", queue),)) in scheduler
        assert value(scheduler, "acoustack_queue_workers", queue=queue) >= 1
    assert value(scheduler, "acoustack_scrape_errors", source="rabbitmq") == 0
