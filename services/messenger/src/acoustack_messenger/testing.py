"""The messenger's pytest fixtures, for every test that watches what a device sends: the local
Mosquitto, a Mosquitto of the test's own (TLS, WebSockets, passwords), a subscriber, an HTTP server
in a thread, and ports where nothing listens (or nothing answers).

Enabled with ``pytest_plugins`` (the repository's conftest does).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from paho.mqtt import client as mqtt

from acoustack.testing.proxy import TcpProxy
from acoustack.testing.servers import free_port

MQTT_ENV = "ACOUSTACK_TEST_MQTT"  # host:port of a broker that takes anonymous clients
LOCAL_MQTT = "127.0.0.1:1883"


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


@dataclass(frozen=True)
class Broker:
    host: str
    port: int


@pytest.fixture(scope="session")
def mqtt_broker() -> Broker:
    """The machine's Mosquitto (or the one ACOUSTACK_TEST_MQTT names)."""
    host, _, port = os.environ.get(MQTT_ENV, LOCAL_MQTT).rpartition(":")
    if not _port_open(host, int(port)):
        pytest.fail(
            f"no MQTT broker on {host}:{port} for the tests: run Mosquitto there "
            f"(scripts/ensure-test-servers.sh starts or installs it) or set {MQTT_ENV}=host:port",
            pytrace=False,
        )
    return Broker(host, int(port))


@dataclass
class Received:
    topic: str
    payload: bytes
    user_properties: dict[str, str]
    retain: bool


class Subscriber:
    """A paho client collecting what arrives on ``topic`` (and its subtopics)."""

    def __init__(
        self,
        broker: Broker,
        topic: str,
        *,
        username: str | None = None,
        password: str | None = None,
        **options,
    ) -> None:
        self.topic = topic
        self.messages: queue.Queue[Received] = queue.Queue()
        self.backlog: list[Received] = []
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"test-sub-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
            **options,
        )
        subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_args: subscribed.set()
        self.client.on_connect = lambda client, *_args: client.subscribe(f"{topic}/#", qos=1)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert subscribed.wait(10), f"could not subscribe to {topic} on {broker}"
        # '#' matches the parent level too: topic itself and everything under it.

    def _on_message(self, _client, _userdata, message) -> None:
        properties = getattr(message.properties, "UserProperty", None) or []
        self.messages.put(
            Received(message.topic, message.payload, dict(properties), bool(message.retain))
        )

    def next(self, timeout_s: float = 10.0, topic: str | None = None) -> Received:
        """The next message (on ``topic`` when given; others are kept for later calls), or fail
        after timeout_s."""
        for index, kept in enumerate(self.backlog):
            if topic is None or kept.topic == topic:
                return self.backlog.pop(index)
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                received = self.messages.get(timeout=left)
            except queue.Empty:
                break
            if topic is None or received.topic == topic:
                return received
            self.backlog.append(received)
        raise AssertionError(f"nothing arrived on {topic or self.topic} in {timeout_s} s")

    def drain(self) -> list[Received]:
        """What has arrived so far and not been taken."""
        taken, self.backlog = list(self.backlog), []
        while True:
            try:
                taken.append(self.messages.get_nowait())
            except queue.Empty:
                return taken

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def topic() -> str:
    return f"acoustack-test/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def subscriber(mqtt_broker: Broker, topic: str) -> Iterator[Subscriber]:
    sub = Subscriber(mqtt_broker, topic)
    yield sub
    sub.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port where nothing listens (taken and let go)."""
    return free_port()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts TCP connections and never says a word: a server that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()


# HTTP


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpSink:
    """An HTTP server in a thread. Paths: /ok → 201, /fail → 500, /reject → 400,
    /slow → answers after ``slow_s``, /redirect → 302, /garbled → 400 with control characters in
    its body, /picky → 400 to a body holding "poison" and 201 to others, /busy → 429 with
    ``Retry-After: 120``, /late → 408; every request is recorded."""

    url: str
    requests: list[Recorded] = field(default_factory=list)
    slow_s: float = 3.0

    def posts(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]


@pytest.fixture
def http_sink() -> Iterator[HttpSink]:
    sink = HttpSink(url="")
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args) -> None:  # quiet test output
            pass

        def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None):
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _record(self) -> Recorded:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            recorded = Recorded(self.command, self.path, dict(self.headers), body)
            sink.requests.append(recorded)
            return recorded

        def do_POST(self) -> None:
            recorded = self._record()
            if self.path == "/fail":
                self._answer(500, b"<html>\n  database   is down\n</html>")
            elif self.path == "/reject":
                self._answer(400, json.dumps({"error": "missing field"}).encode())
            elif self.path == "/slow":
                release.wait(sink.slow_s)
                self._answer(200, b"late")
            elif self.path == "/redirect":
                self._answer(302, b"", {"Location": "/ok"})
            elif self.path == "/garbled":
                self._answer(400, b"no\x00 \x1b[31mway\x7f")
            elif self.path == "/picky" and b"poison" in recorded.body:
                self._answer(400, b"poison refused")
            elif self.path == "/busy":
                self._answer(429, b"slow down", {"Retry-After": "120"})
            elif self.path == "/late":
                self._answer(408, b"")
            else:
                self._answer(201, b'{"stored": true}')

        def do_OPTIONS(self) -> None:
            self._record()
            if self.path == "/fail":
                self._answer(503, b"")
            else:
                self._answer(204, b"", {"Allow": "POST, OPTIONS"})

    class Server(ThreadingHTTPServer):
        def handle_error(self, *_args) -> None:  # a client that gave up (timeout tests)
            pass

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sink.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield sink
    release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


# A Mosquitto of the test's own: passwords, TLS and WebSockets


@dataclass(frozen=True)
class OwnBroker:
    plain: Broker  # password required
    tls: Broker
    websockets: Broker
    ca_file: Path
    username: str = "alice"
    # Made per run: no password lives in a committed file, a test broker's neither.
    password: str = field(default_factory=lambda: secrets.token_hex(12))


def _run(*args: str, cwd: Path) -> None:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{' '.join(args)}: {result.stderr}"


@pytest.fixture(scope="session")
def own_broker(tmp_path_factory) -> Iterator[OwnBroker]:
    for tool in ("mosquitto", "mosquitto_passwd", "openssl"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            pytest.fail(
                f"{tool} not found: install mosquitto and openssl (Debian: apt-get install "
                "mosquitto openssl)",
                pytrace=False,
            )
    folder = tmp_path_factory.mktemp("mosquitto")
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=acoustack test CA", cwd=folder)  # fmt: skip
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
         "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=folder)  # fmt: skip
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.cnf",
         cwd=folder)  # fmt: skip
    owner = OwnBroker(
        Broker("127.0.0.1", free_port()),
        Broker("127.0.0.1", free_port()),
        Broker("127.0.0.1", free_port()),
        folder / "ca.crt",
    )
    _run("mosquitto_passwd", "-c", "-b", "passwd", owner.username, owner.password, cwd=folder)
    (folder / "mosquitto.conf").write_text(
        "per_listener_settings false\n"
        "allow_anonymous false\n"
        f"password_file {folder / 'passwd'}\n"
        "persistence false\n"
        "user root\n"  # only used when started as root: keep read access to the files above
        "log_dest stderr\n"
        f"listener {owner.plain.port} 127.0.0.1\n"
        f"listener {owner.tls.port} 127.0.0.1\n"
        f"certfile {folder / 'server.crt'}\n"
        f"keyfile {folder / 'server.key'}\n"
        f"listener {owner.websockets.port} 127.0.0.1\n"
        "protocol websockets\n"
    )
    with _mosquitto(folder / "mosquitto.conf", owner.plain, owner.tls, owner.websockets):
        yield owner


@contextlib.contextmanager
def _mosquitto(config: Path, *listening: Broker) -> Iterator[None]:
    """Mosquitto with ``config``, from when its ports are open until the block ends."""
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    process = subprocess.Popen(
        [mosquitto, "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while not all(_port_open(b.host, b.port) for b in listening):
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "the test's Mosquitto did not open its ports"
            time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait(10)


# Between a client and a broker: what is in flight, and a link that goes away


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    """``count`` bytes, or ConnectionError when the other side closed first."""
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _read_packet(sock: socket.socket) -> bytes:
    """One whole MQTT control packet: its fixed header (type byte, Remaining Length as a
    variable byte integer) and the rest."""
    header = _read_exactly(sock, 1)
    length, shift = 0, 0
    while True:
        byte = _read_exactly(sock, 1)
        header += byte
        length += (byte[0] & 0x7F) << shift
        shift += 7
        if not byte[0] & 0x80:
            break
    return header + _read_exactly(sock, length)


def _body(packet: bytes) -> bytes:
    index = 1
    while packet[index] & 0x80:
        index += 1
    return packet[index + 1 :]


def _vbi(data: bytes, index: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        value += (data[index] & 0x7F) << shift
        shift += 7
        index += 1
        if not data[index - 1] & 0x80:
            return value, index


class MqttRelay(TcpProxy):
    """A TcpProxy in front of a broker that reads the MQTT v5 packets going through: it keeps
    how many QoS 1 PUBLISHes were awaiting their PUBACK at most (``most_in_flight``) and the
    payloads whose PUBACK it passed on to the client (``acknowledged``). With ``cut_after`` it
    passes that many PUBACKs on, then cuts every link and refuses new ones: the broker went
    away."""

    def __init__(self, broker: Broker, cut_after: int | None = None) -> None:
        self.cut_after = cut_after
        self.in_flight: dict[int, bytes] = {}  # packet id -> payload
        self.most_in_flight = 0
        self.acknowledged: list[bytes] = []
        self._counting = threading.Lock()
        super().__init__(broker.host, broker.port)

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        from_client = src.getpeername() != self.target
        src.settimeout(None)  # TcpProxy connects upstream with a timeout; idle links stay here
        try:
            while True:
                packet = _read_packet(src)
                kind, qos = packet[0] >> 4, (packet[0] >> 1) & 3
                if from_client and kind == 3 and qos == 1:  # PUBLISH
                    body = _body(packet)
                    topic_end = 2 + int.from_bytes(body[:2], "big")
                    packet_id = int.from_bytes(body[topic_end : topic_end + 2], "big")
                    properties, start = _vbi(body, topic_end + 2)
                    with self._counting:
                        self.in_flight[packet_id] = body[start + properties :]
                        self.most_in_flight = max(self.most_in_flight, len(self.in_flight))
                elif not from_client and kind == 4:  # PUBACK
                    with self._counting:
                        if self.cut_after is not None and len(self.acknowledged) >= self.cut_after:
                            break
                        packet_id = int.from_bytes(_body(packet)[:2], "big")
                        self.acknowledged.append(self.in_flight.pop(packet_id))
                dst.sendall(packet)
        except (OSError, ConnectionError):
            pass
        if self.cut_after is not None and len(self.acknowledged) >= self.cut_after:
            self.cut()  # the PUBACKs passed on just before may never be read, as on a real link
        else:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def mqtt_relay(mqtt_broker: Broker) -> Iterator[Callable[..., MqttRelay]]:
    """Makes MqttRelays in front of the local Mosquitto (closed after the test)."""
    made: list[MqttRelay] = []

    def make(cut_after: int | None = None) -> MqttRelay:
        made.append(MqttRelay(mqtt_broker, cut_after))
        return made[-1]

    yield make
    for relay in made:
        relay.close()


@pytest.fixture(scope="session")
def refusing_broker(tmp_path_factory) -> Iterator[Broker]:
    """A Mosquitto of the test's own whose ACL lets anonymous clients publish under
    ``acoustack-test/`` only: a publish elsewhere gets a PUBACK refusal ("Not authorized")."""
    folder = tmp_path_factory.mktemp("mosquitto-acl")
    (folder / "acl").write_text("topic readwrite acoustack-test/#\n")
    broker = Broker("127.0.0.1", free_port())
    (folder / "mosquitto.conf").write_text(
        f"listener {broker.port} 127.0.0.1\n"
        "allow_anonymous true\n"
        f"acl_file {folder / 'acl'}\n"
        "persistence false\n"
        "user root\n"
        "log_dest stderr\n"
    )
    with _mosquitto(folder / "mosquitto.conf", broker):
        yield broker
