"""The hub's test fixtures, for its tests and its benchmark: a database with the hub's schema, a
Mosquitto of the test's own with the hub broker's configuration (services/hub/broker.conf), and
hub replicas as real processes (``python -m acoustack_hub``), which a test may kill with -9.

Enabled with ``pytest_plugins`` (the repository's conftest does).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from acoustack import schema
from acoustack.components.messages import FullModelOutputMessageBuilder
from acoustack.tasks import heartbeat_to_json
from acoustack.testing import factories, servers
from acoustack.testing.servers import free_port
from acoustack_hub.store import migrate
from acoustack_messenger.testing import Broker, _mosquitto

BROKER_CONF = Path(__file__).resolve().parents[2] / "broker.conf"


@contextlib.contextmanager
def hub_database(admin_url: str) -> Iterator[str]:
    name = servers.unique_name("acoustack_hub")
    url = servers.create_database(admin_url, name)
    try:
        with psycopg.connect(url) as conn:
            migrate(conn)
        yield url
    finally:
        servers.drop_database(admin_url, name)


@contextlib.contextmanager
def hub_broker() -> Iterator[Broker]:
    """Mosquitto on a free loopback port, anonymous, with the hub broker's limits."""
    broker = Broker("127.0.0.1", free_port())
    with tempfile.TemporaryDirectory(prefix="hub-mosquitto-") as folder:
        config = Path(folder) / "mosquitto.conf"
        config.write_text(
            "per_listener_settings false\nallow_anonymous true\npersistence false\n"
            f"log_dest stderr\nlistener {broker.port} 127.0.0.1\n" + BROKER_CONF.read_text()
        )
        with _mosquitto(config, broker):
            yield broker


@dataclass
class HubProcess:
    """One hub replica, a process of its own."""

    env: dict[str, str]
    name: str
    http_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, wait_s: float = 30.0) -> HubProcess:
        env = {
            **os.environ,
            **self.env,
            "HUB_HTTP_HOST": "127.0.0.1",
            "HUB_HTTP_PORT": str(self.http_port),
            "HUB_METRICS_HOST": "127.0.0.1",
            "HUB_METRICS_PORT": str(self.metrics_port),
            "HUB_CLIENT_ID": self.name,
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.log_path = Path(tempfile.mkstemp(prefix=f"{self.name}-", suffix=".log")[1])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "acoustack_hub"],
            env=env,
            stdout=self.log_path.open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + wait_s
        while True:
            assert self.process.poll() is None, f"{self.name} exited: {self.log()}"
            with contextlib.suppress(OSError):
                if self.get("/healthz") == {"database": "ok"}:
                    return self
            assert time.monotonic() < deadline, f"{self.name} not up: {self.log()}"
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path else ""

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read())

    def taken(self) -> float:
        """Messages this replica stored or found already stored (its Prometheus counter)."""
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as response:
            text = response.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("acoustack_hub_messages_total{")
        )

    def kill(self) -> None:
        """-9: nothing flushed, nothing acknowledged that was not already."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> int | None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode if self.process else None


@pytest.fixture
def hub_database_url(postgres_admin_url: str) -> Iterator[str]:
    with hub_database(postgres_admin_url) as url:
        yield url


@pytest.fixture(scope="session")
def hub_mqtt() -> Iterator[Broker]:
    with hub_broker() as broker:
        yield broker


@pytest.fixture
def hub_replicas(hub_database_url: str, hub_mqtt: Broker, request) -> Iterator[list[HubProcess]]:
    """Two replicas on one shared subscription (its own topic and group per test), not started."""
    topic = f"fleet-test/{request.node.name[:40]}/{os.getpid()}-{time.monotonic_ns()}"
    env = {
        "HUB_DATABASE_URL": hub_database_url,
        "HUB_BROKER_HOST": hub_mqtt.host,
        "HUB_BROKER_PORT": str(hub_mqtt.port),
        "HUB_SUBSCRIBE_TOPIC": topic,
        "HUB_SHARE_GROUP": f"g{time.monotonic_ns()}",
        "HUB_MAX_MESSAGE_BYTES": "65536",
    }
    suffix = time.monotonic_ns()
    replicas = [HubProcess(dict(env), f"hub-{i}-{suffix}") for i in range(2)]
    yield replicas
    for replica in replicas:
        replica.stop()


# What devices send, built by the devices' own code


def detection_message(
    seed: int, n_detections: int = 2, created_at=None, species: str | None = None
) -> schema.Message:
    """A detection message as a device's detector puts it in its outbox."""
    output = factories.model_output(uuid.uuid4(), n_detections, seed=seed)
    if created_at is not None:
        output = output.model_copy(update={"created_at": created_at})
    if species is not None:
        for d in output.detections:
            d.tags[:] = [schema.PredictedTag(tag=schema.Tag(key="species", value=species))]
    message = FullModelOutputMessageBuilder().build_message(output)
    assert message is not None
    return message


def heartbeat_message(
    device_id: str,
    sent_at=None,
    status: str = "ok",
    deployment: schema.HeartbeatDeployment | None = None,
    **metrics: float,
):
    """A heartbeat as a device's messenger sends it."""
    heartbeat = schema.Heartbeat(
        device_id=device_id,
        sent_at=sent_at or schema.utc_now(),
        status=status,
        metrics=[schema.Metric(name=k, value=v) for k, v in metrics.items()],
        deployment=deployment,
    )
    return schema.Message(content=heartbeat_to_json(heartbeat))


def publish_as_device(
    broker: Broker, topic: str, sent: list[tuple[str, schema.Message]], client_id: str
) -> None:
    """Publishes (device id, message) pairs at QoS 1 with the user properties a device's
    messenger sets, waiting for every PUBACK; pairs may repeat (a redelivery)."""
    from paho.mqtt import client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        infos = []
        for device_id, message in sent:
            properties = Properties(PacketTypes.PUBLISH)
            properties.UserProperty = [("message_id", str(message.id)), ("device_id", device_id)]
            infos.append(client.publish(topic, message.content, qos=1, properties=properties))
        for info in infos:
            info.wait_for_publish(60)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def wait_for(condition, timeout_s: float = 60.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} did not hold within {timeout_s} s"
        time.sleep(0.2)
