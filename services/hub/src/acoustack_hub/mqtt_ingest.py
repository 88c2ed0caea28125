"""The MQTT side: a shared subscription ($share/<group>/<topic>, MQTT v5) on the central broker.

Replicas in one group split the messages between them. QoS 1 with manual acknowledgements: the
PUBACK goes only after the message's batch is committed. The session outlives a disconnection
(clean_start false, a session expiry), so a replica killed mid-batch gets back, when it comes back
with the same client id, every message it had not acknowledged; stored twice is stored once.

Mosquitto (2.0) hands a shared subscription's messages to a member's session while it is away
too, and does not pass them to another member, so a replica that crashed has its share wait for
it. A replica that is stopped (SIGTERM: a rolling update, a scale-down) leaves cleanly instead:
it unsubscribes, takes what the broker still had for it until none comes for a moment, stores
and acknowledges it, then ends its session, so nothing waits for a replica that may not return.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
import time
from pathlib import Path

from paho.mqtt import _packet
from paho.mqtt import client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from acoustack_hub.ingest import LIVE, Ingest
from acoustack_hub.payloads import Incoming

log = logging.getLogger(__name__)

_USER_PROPERTY = 0x26
# How to step over the other properties a PUBLISH may carry (MQTT v5 §3.3.2.3): bytes of a
# fixed size, or "utf8"/"binary" (two-byte length first), or "varint".
_PUBLISH_PROPERTY_SIZES: dict[int, int | str] = {
    0x01: 1,  # payload format indicator
    0x02: 4,  # message expiry interval
    0x03: "utf8",  # content type
    0x08: "utf8",  # response topic
    0x09: "binary",  # correlation data
    0x0B: "varint",  # subscription identifier
    0x23: 2,  # topic alias
}


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    for used in range(4):
        byte = data[at + used]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, used + 1
        shift += 7
    raise ValueError("a variable byte integer longer than 4 bytes")


class _PublishProperties(Properties):
    """A PUBLISH's properties kept as bytes, the user properties read from them when asked.

    paho's generic decoding of every PUBLISH's properties took a third of a replica's time
    (bench/hub); the hub needs only the two user properties the messenger sets. Installed
    (install_fast_publish_properties) in the hub's process only, for the PUBLISHes it receives.
    """

    def __init__(self, packetType: int) -> None:
        object.__setattr__(self, "packetType", packetType)
        object.__setattr__(self, "_raw", b"")

    def unpack(self, buffer: bytes) -> tuple[Properties, int]:
        length, used = _varint(buffer, 0)
        object.__setattr__(self, "_raw", bytes(buffer[used : used + length]))
        return self, used + length

    def user_properties(self) -> list[tuple[str, str]]:
        raw, at, found = self._raw, 0, []
        while at < len(raw):
            ident, used = _varint(raw, at)
            at += used
            if ident == _USER_PROPERTY:
                pair = []
                for _ in range(2):
                    size = int.from_bytes(raw[at : at + 2], "big")
                    pair.append(raw[at + 2 : at + 2 + size].decode("utf-8"))
                    at += 2 + size
                found.append((pair[0], pair[1]))
                continue
            kind = _PUBLISH_PROPERTY_SIZES.get(ident)
            if kind is None:
                raise ValueError(f"property {ident:#x} has no place in a PUBLISH")
            if kind in ("utf8", "binary"):
                at += 2 + int.from_bytes(raw[at : at + 2], "big")
            elif kind == "varint":
                at += _varint(raw, at)[1]
            else:
                at += kind
        return found

    def __getattr__(self, name: str):
        if name == "UserProperty":
            return self.user_properties()
        raise AttributeError(name)

    def __str__(self) -> str:  # paho's debug log prints them
        return f"[UserProperty: {self.user_properties()}]"


def _properties_for(packet_type: int) -> Properties:
    if packet_type == PacketTypes.PUBLISH:
        return _PublishProperties(packet_type)
    return Properties(packet_type)  # CONNACK, SUBACK, PUBACK...: paho's own, as they were


def install_fast_publish_properties() -> None:
    """paho 2.x decodes every packet's properties with what its _packet module calls
    Properties; the PUBLISHes' are ours from then on, in this process."""
    if getattr(_packet, "Properties", None) is Properties:
        _packet.Properties = _properties_for


class MqttIngest:
    def __init__(
        self,
        ingest: Ingest,
        *,
        host: str,
        port: int,
        topic: str,
        group: str,
        client_id: str = "",
        username: str = "",
        password_file: Path | None = None,
        session_expiry_s: int = 3600,
        receive_maximum: int = 1000,
        priority: int = LIVE,
    ) -> None:
        install_fast_publish_properties()
        self.ingest = ingest
        self.priority = priority
        self.host, self.port = host, port
        self.subscription = f"$share/{group}/{topic}"
        self.session_expiry_s = session_expiry_s
        self.receive_maximum = receive_maximum
        self.connected = threading.Event()
        self.unsubscribed = threading.Event()
        self.last_message = time.monotonic()
        self.client_id = client_id or f"hub-{socket.gethostname()}"
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if username:
            password = password_file.read_text().strip() if password_file else None
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_unsubscribe = lambda *_args: self.unsubscribed.set()
        self.client.reconnect_delay_set(1, 30)

    def start(self) -> None:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.session_expiry_s
        properties.ReceiveMaximum = self.receive_maximum
        self.client.connect_async(
            self.host, self.port, keepalive=30, clean_start=False, properties=properties
        )
        self.client.loop_start()

    def unsubscribe_and_drain(self, quiet_s: float = 1.0, timeout_s: float = 20.0) -> None:
        """No more messages for this replica; returns once what the broker still had for it
        has come (none for quiet_s), or after timeout_s."""
        if not self.connected.is_set():
            return
        self.client.unsubscribe(self.subscription)
        self.unsubscribed.wait(min(5.0, timeout_s))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and time.monotonic() - self.last_message < quiet_s:
            time.sleep(0.1)

    def stop(self, end_session: bool = True) -> None:
        """Leaves the broker, after the acknowledgements already handed to paho. With
        end_session, the broker forgets this replica's session (nothing more waits for it)."""
        properties = None
        if end_session:
            properties = Properties(PacketTypes.DISCONNECT)
            properties.SessionExpiryInterval = 0
        self.client.disconnect(properties=properties)
        self.client.loop_stop()

    def publish(self, topic: str, payload: str) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        if not info.is_published():
            raise RuntimeError(f"not published on {topic}: {mqtt.error_string(info.rc)}")

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            log.warning("broker %s:%d refused the connection: %s", self.host, self.port,
                        reason_code)  # fmt: skip
            return
        client.subscribe(self.subscription, options=SubscribeOptions(qos=1))
        log.info("subscribed to %s on %s:%d", self.subscription, self.host, self.port)
        self.connected.set()

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        self.connected.clear()
        log.warning("broker connection lost (%s); reconnecting", reason_code)

    def _on_message(self, client, _userdata, message) -> None:
        self.last_message = time.monotonic()
        found = dict(getattr(message.properties, "UserProperty", None) or [])
        mid, qos = message.mid, message.qos
        self.ingest.submit(
            Incoming(
                raw=message.payload,
                message_id=found.get("message_id"),
                device_id=found.get("device_id"),
                via="mqtt",
                received_at=dt.datetime.now(dt.UTC),
                topic=message.topic,
                # The messenger's `software` property is HTTP's User-Agent over MQTT.
                user_agent=found.get("software"),
            ),
            lambda _item: client.ack(mid, qos),
            self.priority,
        )
