"""The messengers: MQTT (a window of messages in flight at once) and HTTP (one at a time)
delivery of outbox messages.

Each ``send_message`` returns an ``acoustack.schema.Response`` and never raises for a delivery
failure, so the send task stores every attempt. Statuses:

- SUCCESS: the broker acknowledged the publish (MQTT PUBACK), or the server answered 2xx;
- FAILED: the other side answered and refused this message for good (a PUBACK failure code other
  than "Quota exceeded", HTTP 3xx, 4xx other than 408 and 429): it counts towards dead letters;
- ERROR: it could not be reached or cannot take messages now (refused connection, DNS, TLS,
  credentials, HTTP 5xx, 408 or 429, PUBACK "Quota exceeded"), with the server's Retry-After
  when it gave one: the message is tried again after a backoff;
- TIMEOUT: no answer within the configured time (tried again after a backoff).

Every message carries its id, so a receiver can drop the duplicates that at-least-once delivery
can make: MQTT v5 user property ``message_id`` (and ``device_id``, and ``software``: the sender's
``acoustack-messenger/<version>``, as HTTP's User-Agent), HTTP headers ``X-Message-Id``
and ``Idempotency-Key`` (and ``X-Device-Id``). The payload itself is the message's content,
unchanged.

Each messenger also has ``check()``: a reachability test that sends no message, for SelfCheck.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import functools
import http.client
import logging
import re
import select
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from paho.mqtt import client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties, VariableByteIntegers
from paho.mqtt.reasoncodes import ReasonCode

from acoustack import __version__, limits, schema
from acoustack.errors import InvalidArgumentError
from acoustack.program_config import MessagingConfig
from acoustack.self_check import CheckResult
from acoustack_messenger.secret_files import read_secret

log = logging.getLogger(__name__)

Status = schema.ResponseStatus
SNIPPET_CHARS = 200
USER_AGENT = f"acoustack-messenger/{__version__}"
DEFAULT_SECRETS_DIR = Path("/run/secrets")  # where compose secrets and k3s Secret volumes go
# MQTT: QoS 1 publishes awaiting their PUBACK at once, at most (the broker's Receive Maximum may
# lower it), and how many messages a send run hands the MQTT messenger at once.
MAX_IN_FLIGHT = 100
MQTT_WINDOW = 1000
FIRST_MQTT_WINDOW = 100


class CheckableMessenger(Protocol):
    """A Messenger (acoustack.components.types) that can also test its reachability and let go
    of its connections."""

    name: str

    def send_message(self, message: schema.Message) -> schema.Response: ...

    def check(self) -> CheckResult: ...

    def close(self) -> None: ...


def _snippet(data: bytes | str) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS] + "…"


def _reason(exc: BaseException | str) -> str:
    """An OS or library error in a few words, e.g. 'ConnectionRefusedError: [Errno 111] ...'."""
    if isinstance(exc, str):  # urllib gives some reasons as plain text
        return exc
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _response(
    message: schema.Message, status: Status, content: str, retry_after_s: float | None = None
) -> schema.Response:
    # A receiver's answer may hold any character; the store keeps text without control ones.
    content = limits.clean_text(content[:2000])
    return schema.Response(
        message_id=message.id, status=status, content=content, retry_after_s=retry_after_s
    )


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """An HTTP Retry-After (delay seconds, or an HTTP date) in seconds from now; None when
    absent or unreadable (the backoff alone then decides)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


# MQTT


class _MqttUnreachable(Exception):
    """The broker could not be reached or would not take the connection; ``status`` says how."""

    def __init__(self, status: Status, text: str) -> None:
        super().__init__(text)
        self.status = status


_CONNECT_HINTS = {
    "Bad user name or password": "check messaging.mqtt_username and the secret "
    "messaging.mqtt_password_secret names",
    "Not authorized": "check messaging.mqtt_username and the secret messaging.mqtt_password_secret "
    "names, and the broker's ACL for this client id",
    "Client identifier not valid": "the broker refuses this client id (the device id)",
    "Unsupported protocol version": "the broker must speak MQTT v5",
}

_SCHEMES = {
    ("tcp", False): "mqtt",
    ("tcp", True): "mqtts",
    ("websockets", False): "ws",
    ("websockets", True): "wss",
}


class _Client(mqtt.Client):
    """paho's client with a PUBACK of at most a reason code read from its bytes: paho decodes each
    into new ReasonCode and Properties objects through its generic tables, which took a third of
    reading the PUBACKs. Anything longer (with properties) is left to paho."""

    def _handle_pubackcomp(self, cmd):
        packet = self._in_packet["packet"]
        if cmd != "PUBACK" or not 2 <= len(packet) <= 3 or self._protocol != mqtt.MQTTv5:
            return super()._handle_pubackcomp(cmd)
        mid = int.from_bytes(packet[:2], "big")
        try:
            reason = _puback_reason(packet[2] if len(packet) == 3 else 0)
        except KeyError:  # not a PUBACK reason code: paho says how the packet is malformed
            return super()._handle_pubackcomp(cmd)
        with self._out_message_mutex:
            if mid in self._out_messages:
                return self._do_on_publish(mid, reason, _NO_PUBACK_PROPERTIES)
        return mqtt.MQTT_ERR_SUCCESS


_NO_PUBACK_PROPERTIES = Properties(PacketTypes.PUBACK)


@functools.cache
def _puback_reason(value: int) -> ReasonCode:
    # Shared, one per code: nothing changes a ReasonCode once made.
    return ReasonCode(PacketTypes.PUBACK, identifier=value)


class _Network:
    """Drives one client's socket in place of paho's ``loop_start()`` thread. Between sends a
    thread of its own does (CONNACK, keepalives, PUBACKs of announcements, Home Assistant's birth
    messages); during a send the sending thread does, holding ``lock``: its PUBLISHes are written
    as they are made and the PUBACKs read as they come, all that have come at each read. With
    paho's thread every PUBLISH was handed over to it and woke it, which was about half the
    sender's CPU."""

    def __init__(self, client: mqtt.Client, name: str) -> None:
        self.client = client
        self.lock = threading.Lock()  # held by whoever drives the socket; paho is not reentrant
        self._stopping = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def pump(self, timeout_s: float) -> bool:
        """With ``lock`` held: wait up to ``timeout_s`` for the socket, then write what waits,
        read what came and keep the connection alive. False once the connection is gone."""
        client = self.client
        sock = client.socket()
        if sock is None:
            return False
        # TLS (and WebSocket) may hold decrypted bytes the socket no longer shows to select.
        pending = getattr(sock, "pending", None)
        buffered = bool(pending and pending())
        try:
            readable, writable, _ = select.select(
                [sock], [sock] if client.want_write() else [], [], 0.0 if buffered else timeout_s
            )
        except (OSError, ValueError, TypeError):  # closed under us
            return False
        rc = mqtt.MQTT_ERR_SUCCESS
        if writable:
            rc = client.loop_write()
        if rc == mqtt.MQTT_ERR_SUCCESS and (readable or buffered):
            rc = client.loop_read()
        if rc == mqtt.MQTT_ERR_SUCCESS:
            rc = client.loop_misc()
        return rc == mqtt.MQTT_ERR_SUCCESS and client.socket() is not None

    def _run(self) -> None:
        client = self.client
        while not self._stopping:
            sock = client.socket()
            if sock is None:
                return
            try:  # without the lock, so that a send can take the socket at once
                readable, _, _ = select.select(
                    [sock, self._wake_r], [sock] if client.want_write() else [], [], 1.0
                )
            except (OSError, ValueError, TypeError):
                return
            if self._wake_r in readable:
                self._wake_r.recv(64)
            with self.lock:
                if self._stopping or not self.pump(0.0):
                    return

    def stop(self, reason: ReasonCode | None = None) -> None:
        """Disconnect (sending DISCONNECT with ``reason``, within a second) and end the
        thread."""
        with self.lock:
            self._stopping = True
            self.client.disconnect(reasoncode=reason)
            deadline = time.monotonic() + 1.0
            while self.client.want_write() and time.monotonic() < deadline:
                if not self.pump(max(0.0, deadline - time.monotonic())):
                    break
        self._wake_w.send(b"x")
        if threading.current_thread() is not self._thread and self._thread.is_alive():
            self._thread.join()
        self._wake_r.close()
        self._wake_w.close()


class _Session:
    """What one connection's network driver learns (each connection gets its own, so a late
    callback of an old one cannot confuse the next). The callbacks run in whichever thread
    drives the socket, with ``network.lock`` held, as do the waits for PUBACKs."""

    def __init__(self) -> None:
        self.answered = threading.Event()  # CONNACK came, good or bad
        self.connected = threading.Event()
        self.refusal: ReasonCode | None = None
        self.acks: dict[int, ReasonCode] = {}
        self.receive_maximum = 1
        self.network: _Network | None = None

    def on_connect(self, _client, _userdata, _flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.refusal = reason_code
        else:
            # More QoS 1 publishes in flight than the broker's Receive Maximum (Mosquitto's is
            # 20) would make it disconnect; paho does not keep to it by itself.
            most = getattr(properties, "ReceiveMaximum", None) or MAX_IN_FLIGHT
            self.receive_maximum = min(most, MAX_IN_FLIGHT)
            self.connected.set()
        self.answered.set()

    def on_disconnect(self, _client, _userdata, _flags, _reason_code, _properties) -> None:
        self.connected.clear()

    def on_publish(self, _client, _userdata, mid, reason_code, _properties) -> None:
        # Kept whether or not a sender waits yet: the PUBACK may beat publish() returning.
        self.acks[mid] = reason_code

    def wait_for_ack(self, mid: int, timeout_s: float) -> ReasonCode | None:
        got: dict[int, ReasonCode] = {}
        self.collect_acks({mid}, got, 0, time.monotonic() + timeout_s, timeout_s)
        return got.get(mid)

    def collect_acks(
        self,
        pending: set[int],
        got: dict[int, ReasonCode],
        down_to: int,
        deadline: float,
        idle_s: float,
    ) -> float | None:
        """With ``network.lock`` held: move the PUBACKs of ``pending`` into ``got`` until at
        most ``down_to`` are pending, reading the socket meanwhile. Returns the deadline for the
        next wait (``idle_s`` after the last PUBACK: a long window on a slow link is progress, a
        silent broker is not), or None when the deadline passed or the connection was lost
        first."""
        alive = True
        while len(pending) > down_to:
            if self.acks:
                arrived, self.acks = self.acks, {}
                for mid, reason in arrived.items():
                    if mid in pending:  # others: retained publishes nobody waits for
                        pending.discard(mid)
                        got[mid] = reason
                deadline = time.monotonic() + idle_s
                continue
            left = deadline - time.monotonic()
            if left <= 0 or not alive or not self.connected.is_set() or self.network is None:
                return None
            alive = self.network.pump(left)
        return deadline


class MqttMessenger:
    """Publishes messages with QoS 1, a window of them at a time (``window``), up to the broker's
    Receive Maximum awaiting their PUBACK at once, and waits for each one's PUBACK.

    One connection per messenger, opened at the first send and kept (a network thread answers the
    broker's keepalives), with the device id as client id and MQTT v5. While it is up a retained
    ``online`` sits on ``availability_topic``; the will makes the broker replace it with
    ``offline`` when the connection drops or ``close()`` is called. A lost connection is opened
    again by the next send, not in the background, so that send's response tells what failed.
    """

    def __init__(
        self,
        host: str,
        port: int,
        topic: str,
        client_id: str,
        *,
        username: str = "",
        password: str = "",
        tls: bool = False,
        tls_context: ssl.SSLContext | None = None,
        transport: str = "tcp",
        websocket_path: str = "/mqtt",
        timeout_s: float = 10.0,
        keepalive_s: int = 60,
        availability_topic: str | None = None,
        backlog_topic: str = "",
        backlog_age_s: float = 300.0,
    ) -> None:
        if not host:
            raise InvalidArgumentError("messaging.mqtt_host: empty")
        if not topic or any(c in topic for c in "#+\0"):
            raise InvalidArgumentError(
                f"messaging.mqtt_topic: {topic!r} is not a topic one can publish to "
                "(not empty, no wildcards + or #)"
            )
        if any(c in backlog_topic for c in "#+\0"):
            raise InvalidArgumentError(
                f"messaging.mqtt_backlog_topic: {backlog_topic!r} is not a topic one can publish "
                "to (no wildcards + or #)"
            )
        if transport not in ("tcp", "websockets"):
            raise InvalidArgumentError(
                f"messaging.mqtt_transport: {transport!r}, expected tcp or websockets"
            )
        self.host, self.port, self.topic = host, port, topic
        # A backlog on a topic of its own, so a receiver can take live messages first (its broker
        # queues each subscription's messages in order: live ones would wait behind the backlog).
        self.backlog_topic, self.backlog_age = backlog_topic, dt.timedelta(seconds=backlog_age_s)
        self.client_id = client_id
        self.username, self.password = username, password
        self.tls = tls or tls_context is not None
        self.tls_context = tls_context
        self.transport = transport
        self.websocket_path = websocket_path
        self.timeout_s = timeout_s
        self.keepalive_s = keepalive_s
        self.availability_topic = availability_topic
        self.name = f"mqtt {host}:{port}"
        # Messages a send run hands over at once (send_messages): what the broker acknowledged in
        # timeout_s at the last window's pace, so that a window lasts about as long as one send
        # may, and the run's deadline (checked between windows) holds on a slow link too.
        self.window = FIRST_MQTT_WINDOW
        self.where = f"{_SCHEMES[transport, self.tls]}://{host}:{port}"
        self._lock = threading.Lock()  # one send or close at a time
        self._client: mqtt.Client | None = None
        self._session = _Session()
        self._acked_texts: dict[int, str] = {}  # a success response's content, by reason code
        # What is published retained at every (re)connection and again when a message arrives
        # on ``announce_on`` saying "online" (Home Assistant's birth message).
        self.announcements: Callable[[], list[tuple[str, str]]] | None = None
        self.announce_on: str | None = None

    def _new_client(self, client_id: str, session: _Session, *, with_will: bool) -> mqtt.Client:
        client = _Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            transport=self.transport,
            # Reconnecting is left to the next send, whose response can then say what failed.
            reconnect_on_failure=False,
        )
        client.connect_timeout = self.timeout_s
        client.max_inflight_messages_set(MAX_IN_FLIGHT)  # the window's own limit governs
        if self.transport == "websockets":
            client.ws_set_options(path=self.websocket_path)
        if self.tls:
            client.tls_set_context(self.tls_context or ssl.create_default_context())
        if self.username:
            client.username_pw_set(self.username, self.password or None)
        if with_will and self.availability_topic:
            client.will_set(self.availability_topic, "offline", qos=1, retain=True)
        client.on_connect = session.on_connect
        client.on_disconnect = session.on_disconnect
        client.on_publish = session.on_publish
        return client

    def _unreachable(self, exc: BaseException) -> _MqttUnreachable:
        if isinstance(exc, TimeoutError):
            return _MqttUnreachable(
                Status.TIMEOUT, f"{self.where}: no connection within {self.timeout_s:g} s"
            )
        hint = "is the broker running, and are messaging.mqtt_host and mqtt_port right?"
        if isinstance(exc, ssl.SSLError):
            hint = "TLS failed: does the broker speak TLS on this port (messaging.mqtt_tls)?"
        elif isinstance(exc, socket.gaierror):
            hint = "the host name does not resolve: check messaging.mqtt_host"
        elif isinstance(exc, mqtt.WebsocketConnectionError):
            hint = "WebSocket handshake failed: check messaging.mqtt_transport and the port"
        return _MqttUnreachable(Status.ERROR, f"{self.where}: {_reason(exc)} ({hint})")

    def _connect(self, client: mqtt.Client, session: _Session) -> None:
        """Connect and wait for CONNACK; on failure the client is stopped and _MqttUnreachable
        says why."""
        deadline = time.monotonic() + self.timeout_s
        try:
            client.connect(self.host, self.port, keepalive=self.keepalive_s)
        except (OSError, ValueError) as exc:  # SSL and WebSocket errors are OSErrors too
            raise self._unreachable(exc) from None
        session.network = _Network(client, self.client_id)
        session.network.start()
        if not session.answered.wait(max(0.0, deadline - time.monotonic())):
            _stop(session)
            raise _MqttUnreachable(
                Status.TIMEOUT,
                f"{self.where}: connected, but no answer to CONNECT within {self.timeout_s:g} s "
                "(is it an MQTT broker? does it expect TLS, messaging.mqtt_tls?)",
            )
        if session.refusal is not None:
            _stop(session)
            name = str(session.refusal)
            hint = _CONNECT_HINTS.get(name, "see the broker's log")
            raise _MqttUnreachable(
                Status.ERROR, f"{self.where} refused the connection: {name} ({hint})"
            )

    def _ensure_connected(self) -> tuple[mqtt.Client, _Session]:
        client, session = self._client, self._session
        if client is not None and session.connected.is_set() and client.is_connected():
            return client, session
        if client is not None:
            log.info("%s: the connection was lost; connecting again", self.name)
            _stop(session)
            self._client = None
        session = self._session = _Session()
        client = self._new_client(self.client_id, session, with_will=True)
        self._connect(client, session)
        self._client = client
        with _driving(session):
            if self.availability_topic:
                client.publish(self.availability_topic, "online", qos=1, retain=True)
            if self.announcements is not None:
                self._announce(client)
                if self.announce_on:
                    client.message_callback_add(self.announce_on, self._on_birth)
                    client.subscribe(self.announce_on, qos=1)
        log.info("%s: connected as %s", self.name, self.client_id)
        return client, session

    def _announce(self, client: mqtt.Client) -> None:
        # Not waited for: this may run on the network thread, which is what delivers the acks.
        for topic, payload in self.announcements() if self.announcements else []:
            client.publish(topic, payload, qos=1, retain=True)

    def _on_birth(self, client: mqtt.Client, _userdata, message) -> None:
        if message.payload.strip() == b"online":
            log.info("%s: %s is online: announcing again", self.name, message.topic)
            try:
                self._announce(client)
            except Exception:  # the network thread must live on
                log.exception("%s: announcing failed", self.name)

    def publish(self, topic: str, payload: str, *, retain: bool = True) -> bool:
        """Publish on this messenger's connection at QoS 1 and wait for the broker's PUBACK;
        False when it could not be reached or refused (said in the log)."""
        with self._lock:
            try:
                client, session = self._ensure_connected()
            except _MqttUnreachable as exc:
                log.warning("%s: %s not published: %s", self.name, topic, exc)
                return False
            with _driving(session):
                info = client.publish(topic, payload.encode(), qos=1, retain=retain)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    log.warning(
                        "%s: %s not published: %s", self.name, topic, mqtt.error_string(info.rc)
                    )
                    return False
                reason = session.wait_for_ack(info.mid, self.timeout_s)
        if reason is None or reason.is_failure:
            log.warning("%s: %s not taken: %s", self.name, topic, reason or "no PUBACK")
            return False
        return True

    def send_message(self, message: schema.Message) -> schema.Response:
        return self.send_messages([message])[0]

    def send_messages(self, messages: Sequence[schema.Message]) -> list[schema.Response]:
        """Publish every message, up to the broker's Receive Maximum in flight at once, and wait
        for their PUBACKs: one response per message, in order. Each one's PUBACK decides its
        outcome; a message whose PUBACK did not come (the connection was lost, or the broker
        fell silent for ``timeout_s``) is a temporary failure, never a success."""
        started = time.monotonic()
        responses: list[schema.Response | None] = [None] * len(messages)
        mids: dict[int, int] = {}  # index → mid, of the messages published
        pending: set[int] = set()
        acks: dict[int, ReasonCode] = {}
        with self._lock:
            try:
                client, session = self._ensure_connected()
            except _MqttUnreachable as exc:
                return [_response(m, exc.status, str(exc)) for m in messages]
            with _driving(session):
                # The connection may have taken part of the time; the first PUBACK keeps to it.
                deadline: float | None = started + self.timeout_s
                backlog_before = schema.utc_now() - self.backlog_age
                for index, message in enumerate(messages):
                    if len(pending) >= session.receive_maximum:
                        # Wait for one place, not more: a sender that pauses leaves Mosquitto's
                        # PUBACKs waiting for delayed TCP ACKs (it does not set TCP_NODELAY by
                        # default), which made a run four times slower.
                        deadline = session.collect_acks(
                            pending, acks, session.receive_maximum - 1, deadline, self.timeout_s
                        )
                        if deadline is None:
                            break  # lost or silent: the rest is not published
                    old = self.backlog_topic and message.created_at < backlog_before
                    info = client.publish(
                        self.backlog_topic if old else self.topic,
                        message.content.encode(),
                        qos=1,
                        properties=self._properties(message),
                    )
                    if info.rc != mqtt.MQTT_ERR_SUCCESS:
                        responses[index] = _response(
                            message,
                            Status.ERROR,
                            f"{self.where}: not sent: {mqtt.error_string(info.rc)}",
                        )
                        continue
                    mids[index] = info.mid
                    pending.add(info.mid)
                if deadline is not None:
                    session.collect_acks(pending, acks, 0, deadline, self.timeout_s)
                lost = not session.connected.is_set()
            pace = len(acks) / max(time.monotonic() - started, 1e-3)
            self.window = max(1, min(MQTT_WINDOW, int(pace * self.timeout_s)))
        for index, message in enumerate(messages):
            if responses[index] is None:
                responses[index] = self._outcome(message, acks.get(mids.get(index, -1)), lost)
        return responses  # type: ignore[return-value]  # every index is filled

    def _properties(self, message: schema.Message) -> Properties:
        return _PackedProperties(
            [
                (_PAYLOAD_FORMAT_INDICATOR, b"\x01"),  # UTF-8 text
                (_USER_PROPERTY, _utf8("message_id") + _utf8(str(message.id))),
                (_USER_PROPERTY, _utf8("device_id") + _utf8(self.client_id)),
                (_USER_PROPERTY, _SOFTWARE),
            ]
        )

    def _outcome(
        self, message: schema.Message, reason: ReasonCode | None, lost: bool
    ) -> schema.Response:
        if reason is None and lost:
            return _response(
                message,
                Status.ERROR,
                f"{self.where}: the connection was lost before the PUBACK (topic {self.topic})",
            )
        if reason is None:
            return _response(
                message,
                Status.TIMEOUT,
                f"{self.where}: no PUBACK within {self.timeout_s:g} s (topic {self.topic})",
            )
        if not reason.is_failure:
            # The same text for every acknowledged message of a topic: made and cleaned once.
            text = self._acked_texts.get(reason.value)
            if text is None:
                text = limits.clean_text(f"PUBACK {reason} ({self.where} {self.topic})"[:2000])
                self._acked_texts[reason.value] = text
            return schema.Response(message_id=message.id, status=Status.SUCCESS, content=text)
        if str(reason) == "Quota exceeded":
            # The broker's limit for now, not a verdict on this message.
            return _response(
                message,
                Status.ERROR,
                f"{self.where} cannot take messages now on {self.topic}: {reason}",
            )
        return _response(
            message,
            Status.FAILED,
            f"{self.where} refused the message on {self.topic}: {reason}",
        )

    def check(self) -> CheckResult:
        """Connect and disconnect, with client id ``<device id>-check``: the device id itself would
        make the broker drop the worker's own connection."""
        session = _Session()
        client = self._new_client(f"{self.client_id}-check", session, with_will=False)
        try:
            self._connect(client, session)
        except _MqttUnreachable as exc:
            return CheckResult(self.name, False, str(exc))
        _stop(session)
        who = f"as {self.username}" if self.username else "anonymously"
        return CheckResult(
            self.name,
            True,
            f"{self.where}: connected {who} and disconnected (MQTT v5); nothing was published",
        )

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            if client is not None:
                # Reason 4 asks the broker to publish the will: availability turns offline.
                _stop(
                    self._session,
                    ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message"),
                )


_PAYLOAD_FORMAT_INDICATOR, _USER_PROPERTY = 0x01, 0x26  # MQTT v5 property identifiers (2.2.2.2)


def _utf8(text: str) -> bytes:
    """An MQTT UTF-8 string: its length in two bytes, then its bytes (MQTT v5 1.5.4)."""
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


# The same on every PUBLISH: encoded once. What a hub shows as the device's software version.
_SOFTWARE = _utf8("software") + _utf8(USER_AGENT)


class _PackedProperties(Properties):
    """PUBLISH properties packed once, from (identifier, value bytes) pairs: paho packs any
    Properties generically, looking each name up, which took as long as the rest of a publish."""

    def __init__(self, pairs: list[tuple[int, bytes]]) -> None:
        # Not Properties.__init__: its tables per instance are what is slow; paho only packs.
        object.__setattr__(self, "packetType", PacketTypes.PUBLISH)
        data = b"".join(bytes([identifier]) + value for identifier, value in pairs)
        object.__setattr__(self, "_packed", VariableByteIntegers.encode(len(data)) + data)

    def pack(self) -> bytes:
        return self._packed

    def __str__(self) -> str:  # paho's debug log prints the properties
        return f"[{len(self._packed)} bytes packed]"


def _stop(session: _Session, reason: ReasonCode | None = None) -> None:
    if session.network is not None:
        session.network.stop(reason)


@contextlib.contextmanager
def _driving(session: _Session) -> Iterator[None]:
    """This thread drives the connection's socket (``_Network``) for the block."""
    if session.network is None:
        yield
        return
    with session.network.lock:
        yield


# HTTP


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirected POST would be re-sent as a GET without its body: report the 3xx instead."""

    def redirect_request(self, *_args, **_kwargs):
        return None


class HttpMessenger:
    """POSTs each message's content to ``url``; 2xx is success."""

    def __init__(
        self,
        url: str,
        *,
        content_type: str = "application/json",
        timeout_s: float = 10.0,
        device_id: str = "",
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgumentError(
                f"messaging.http_url: {url!r} is not an http:// or https:// URL with a host"
            )
        try:
            port = parts.port
        except ValueError:
            raise InvalidArgumentError(f"messaging.http_url: {url!r} has a bad port") from None
        self.url = url
        self.host = parts.hostname
        self.port = port or (443 if parts.scheme == "https" else 80)
        self.content_type = content_type
        self.timeout_s = timeout_s
        self.device_id = device_id
        self.name = f"http {self.host}:{self.port}"
        # Proxies from the environment (HTTPS_PROXY, NO_PROXY), as a field device behind one needs.
        self._opener = urllib.request.build_opener(
            _NoRedirects, urllib.request.HTTPSHandler(context=tls_context)
        )

    def _request(self, method: str, body: bytes | None, headers: dict[str, str]):
        request = urllib.request.Request(self.url, data=body, method=method, headers=headers)
        request.add_header("User-Agent", USER_AGENT)
        return self._opener.open(request, timeout=self.timeout_s)

    def _failure(self, exc: BaseException) -> tuple[Status, str]:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, TimeoutError):
            return Status.TIMEOUT, f"{self.url}: no answer within {self.timeout_s:g} s"
        hint = "is the server running, and is messaging.http_url right?"
        if isinstance(reason, ssl.SSLError):
            hint = "TLS failed: check the URL's scheme and the server's certificate"
        elif isinstance(reason, socket.gaierror):
            hint = "the host name does not resolve: check messaging.http_url"
        return Status.ERROR, f"{self.url}: {_reason(reason)} ({hint})"

    def send_message(self, message: schema.Message) -> schema.Response:
        headers = {
            "Content-Type": self.content_type,
            "X-Message-Id": str(message.id),
            "Idempotency-Key": str(message.id),
        }
        if self.device_id:
            headers["X-Device-Id"] = self.device_id
        try:
            with self._request("POST", message.content.encode(), headers) as reply:
                status, body = reply.status, reply.read(4096)
        except urllib.error.HTTPError as exc:  # the server answered, but not 2xx
            with exc:
                body = exc.read(4096) if exc.fp is not None else b""
            # 5xx, 408 and 429: the server cannot take messages now; other codes refuse this one.
            temporary = exc.code >= 500 or exc.code in (408, 429)
            retry_after = retry_after_seconds(exc.headers.get("Retry-After")) if temporary else None
            text = f"HTTP {exc.code} {exc.reason}: {_snippet(body)}"
            if retry_after is not None:
                text += f" (Retry-After {retry_after:g} s)"
            kind = Status.ERROR if temporary else Status.FAILED
            return _response(message, kind, text, retry_after)
        except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
            kind, text = self._failure(exc)
            return _response(message, kind, text)
        return _response(message, Status.SUCCESS, f"HTTP {status}: {_snippet(body)}")

    def check(self) -> CheckResult:
        """An OPTIONS request, which makes no message (a POST would). Any HTTP answer shows the
        server is there; what fails the check is what says POSTs will fail too: an ``Allow``
        header without POST, or a server error. A 501 or 405 only says the server does not do
        OPTIONS (Python's http.server is one), not that it refuses POSTs."""
        try:
            with self._request("OPTIONS", None, {}) as reply:
                status, allow = reply.status, reply.headers.get("Allow")
        except urllib.error.HTTPError as exc:
            exc.close()
            status, allow = exc.code, exc.headers.get("Allow")
        except (OSError, http.client.HTTPException) as exc:
            return CheckResult(self.name, False, self._failure(exc)[1])
        allowed = {m.strip().upper() for m in allow.split(",")} if allow else None
        if allowed is not None and "POST" not in allowed:
            return CheckResult(
                self.name,
                False,
                f"{self.url}: the server does not take POST here (HTTP {status}, Allow: "
                f"{allow}): check messaging.http_url",
            )
        if status >= 500 and status != 501:
            return CheckResult(
                self.name,
                False,
                f"{self.url}: answered OPTIONS with HTTP {status}: the server is failing "
                "(see its log)",
            )
        if status in (405, 501):
            return CheckResult(
                self.name,
                True,
                f"{self.url}: answered OPTIONS with HTTP {status} (it does not do OPTIONS, "
                "which says nothing of POST); nothing was posted",
            )
        return CheckResult(
            self.name, True, f"{self.url}: answered OPTIONS with HTTP {status}; nothing was posted"
        )

    def close(self) -> None:
        """Nothing held between requests."""


def availability_topic(config: MessagingConfig, device_id: str) -> str:
    """Under the configured topic, so a broker ACL on that prefix covers it."""
    return f"{config.mqtt_topic}/availability/{device_id}"


def build_messengers(
    config: MessagingConfig, device_id: str, secrets_dir: Path = DEFAULT_SECRETS_DIR
) -> list[CheckableMessenger]:
    """The messengers a messaging section asks for: HTTP when http_url is set, MQTT when
    mqtt_host is; none when neither is (messages then stay in the outbox). The MQTT password is
    the secret ``mqtt_password_secret`` names, in ``secrets_dir``, when a user name is set.

    Raises InvalidArgumentError naming the field when a value cannot work.
    """
    messengers: list[CheckableMessenger] = []
    if config.http_url:
        messengers.append(
            HttpMessenger(
                config.http_url,
                content_type=config.http_content_type,
                timeout_s=config.http_timeout_s,
                device_id=device_id,
            )
        )
    if config.mqtt_host:
        password = ""
        if config.mqtt_username and config.mqtt_password_secret:
            password = read_secret(
                secrets_dir, config.mqtt_password_secret, "messaging.mqtt_password_secret"
            )
        messengers.append(
            MqttMessenger(
                config.mqtt_host,
                config.mqtt_port,
                config.mqtt_topic,
                device_id,
                username=config.mqtt_username,
                password=password,
                tls=config.mqtt_tls,
                transport=config.mqtt_transport,
                timeout_s=config.mqtt_timeout_s,
                availability_topic=availability_topic(config, device_id),
                backlog_topic=config.mqtt_backlog_topic,
                backlog_age_s=config.mqtt_backlog_age_s,
            )
        )
    return messengers
