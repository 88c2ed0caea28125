"""Hub benchmark: a fleet of 1,000 simulated devices against two hub replicas, on a real
Mosquitto (with the hub broker's configuration, services/hub/broker.conf, on a loopback port of
its own) and the local Postgres (a scratch database).

`make bench-hub` (or `uv run --frozen python bench/hub/run.py`). Bounded: BENCH_LIVE_S of live
traffic (default 60), then the backlog, drained within BENCH_DRAIN_TIMEOUT_S (default 300).

Live traffic, all along: every device sends a heartbeat every 60 s (spread over the minute) and
a detection message for 3 recording slots in 10 (a recording every 10 s; a busy night), through
10 publisher connections, each message with the user properties a device's messenger sets.
Then BENCH_BACKLOG_DEVICES (100) devices come back after an hour offline, each with an hour of
detection messages (every 10 s slot: 360), sent oldest first by the messenger's own
MqttMessenger (pipelined windows, as a device sends its outbox), 20 devices at a time; each also
sends its first 20 messages again, as a device whose responses were lost does. The live
traffic goes on meanwhile. The backlog goes to its own topic (BENCH_BACKLOG_TOPIC, default
fleet/bench/backlog: messaging.mqtt_backlog_topic, HUB_BACKLOG_TOPIC), which the hubs take after
live traffic; BENCH_BACKLOG_TOPIC= (empty) mixes it with the live traffic, as before.

stdout carries exactly five lines:
    hub_ingest_msgs_per_s: X /s      messages stored per second while the backlog drained (both
                                     replicas, backlog and live)
    hub_ingest_latency_p95: X ms     live messages, publish to committed (stored_at), the run
    hub_backlog_drain_s: X s         first backlog publish to the last backlog message stored
    hub_lost: N                      messages sent and not stored
    hub_duplicated: N                rows beyond one per message and one per detection
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from paho.mqtt import client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from support import POSTGRES_ADMIN_URL, log

from acoustack import schema
from acoustack_hub.testing import (
    HubProcess,
    detection_message,
    heartbeat_message,
    hub_broker,
    hub_database,
)
from acoustack_messenger.messengers import USER_AGENT, MqttMessenger

DEVICES = int(os.environ.get("BENCH_DEVICES", "1000"))
LIVE_S = float(os.environ.get("BENCH_LIVE_S", "60"))
BACKLOG_DEVICES = int(os.environ.get("BENCH_BACKLOG_DEVICES", "100"))
BACKLOG_PER_DEVICE = int(os.environ.get("BENCH_BACKLOG_PER_DEVICE", "360"))
DRAIN_TIMEOUT_S = float(os.environ.get("BENCH_DRAIN_TIMEOUT_S", "300"))
HEARTBEAT_S = 60.0
SLOT_S = 10.0
DETECTING_SLOTS = 0.3
PUBLISHERS = 10
BACKLOG_AT_ONCE = 20
RESENT = 20
TOPIC = "fleet/bench/messages"
# The backlog on a topic of its own (messaging.mqtt_backlog_topic, HUB_BACKLOG_TOPIC), taken after
# live traffic; BENCH_BACKLOG_TOPIC= (empty) sends it on TOPIC with the live traffic, as before.
BACKLOG_TOPIC = os.environ.get("BENCH_BACKLOG_TOPIC", "fleet/bench/backlog")


def device_name(i: int) -> str:
    return f"bench-{i:04d}"


class LiveFleet:
    """The whole fleet's live traffic on a schedule, until stopped."""

    def __init__(self, broker, seconds: float) -> None:
        self.broker = broker
        self.seconds = seconds
        self.published: dict[str, float] = {}  # message id -> publish time (time.time())
        self.detections_in: dict[str, int] = {}  # message id -> its detections
        self.stop = threading.Event()
        rng = random.Random(1)
        schedule: list[tuple[float, str, schema.Message]] = []
        for i in range(DEVICES):
            device = device_name(i)
            phase = rng.uniform(0, HEARTBEAT_S)
            t = phase
            while t < seconds:
                schedule.append((t, device, heartbeat_message(device, last_recording_age=4.0)))
                t += HEARTBEAT_S
            t = rng.uniform(0, SLOT_S)
            while t < seconds:
                if rng.random() < DETECTING_SLOTS:
                    message = detection_message(rng.randrange(1 << 30), n_detections=2)
                    schedule.append((t, device, message))
                    self.detections_in[str(message.id)] = 2
                t += SLOT_S
        schedule.sort(key=lambda item: item[0])
        self.schedule = schedule
        self.clients = []
        for n in range(PUBLISHERS):
            client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-live-{n}", protocol=mqtt.MQTTv5
            )
            client.max_inflight_messages_set(1000)
            client.max_queued_messages_set(0)
            client.connect(broker.host, broker.port)
            client.loop_start()
            self.clients.append(client)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        for index, (t, device, message) in enumerate(self.schedule):
            wait = t - (time.monotonic() - start)
            if wait > 0 and self.stop.wait(wait):
                return
            properties = Properties(PacketTypes.PUBLISH)
            properties.UserProperty = [
                ("message_id", str(message.id)),
                ("device_id", device),
                ("software", USER_AGENT),  # as a device's messenger sends them
            ]
            self.published[str(message.id)] = time.time()
            self.clients[index % PUBLISHERS].publish(
                TOPIC, message.content, qos=1, properties=properties
            )

    def expected_detections_of(self, stored) -> int:
        return sum(self.detections_in.get(i, 0) for i in self.published if i in stored)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        for client in self.clients:
            client.disconnect()
            client.loop_stop()


# The backlog's messages were all made over an hour before the run; the live ones during it.
BACKLOG_BEFORE = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)


def backlog(device: str) -> list[schema.Message]:
    start = BACKLOG_BEFORE - dt.timedelta(seconds=SLOT_S * BACKLOG_PER_DEVICE)
    made = [start + dt.timedelta(seconds=SLOT_S * k) for k in range(BACKLOG_PER_DEVICE)]
    # Put in the outbox when detected, as a device's detector does (what makes them a backlog).
    return [
        detection_message(hash((device, k)) & 0xFFFFFF, n_detections=2, created_at=when).model_copy(
            update={"created_at": when}
        )
        for k, when in enumerate(made)
    ]


def send_backlog(broker, device: str, messages: list[schema.Message]) -> None:
    messenger = MqttMessenger(
        broker.host, broker.port, TOPIC, device, timeout_s=30, backlog_topic=BACKLOG_TOPIC
    )
    try:
        sent = 0
        for first in range(0, len(messages), messenger.window):
            window = messages[first : first + messenger.window]
            responses = messenger.send_messages(window)
            bad = [r for r in responses if r.status is not schema.ResponseStatus.SUCCESS]
            assert not bad, f"{device}: {bad[0].content}"
            sent += len(window)
        again = messenger.send_messages(messages[:RESENT])  # responses lost: sent again
        assert all(r.status is schema.ResponseStatus.SUCCESS for r in again)
    finally:
        messenger.close()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def main() -> int:
    total_live = LIVE_S + DRAIN_TIMEOUT_S
    with hub_broker() as broker, hub_database(POSTGRES_ADMIN_URL) as url:
        env = {
            "HUB_DATABASE_URL": url,
            "HUB_BROKER_HOST": broker.host,
            "HUB_BROKER_PORT": str(broker.port),
            "HUB_SUBSCRIBE_TOPIC": TOPIC,
            "HUB_BACKLOG_TOPIC": BACKLOG_TOPIC,
            "HUB_LOG_LEVEL": "WARNING",
            "HUB_ALARM_CHECK_S": "3600",  # the simulated devices send no real status
        }
        replicas = [HubProcess(dict(env), f"bench-hub-{i}") for i in range(2)]
        try:
            for replica in replicas:
                replica.start()
            log(f"building the fleet's traffic: {DEVICES} devices, {LIVE_S:.0f} s live ...")
            # Live traffic for the whole run (cut when the drain ends); the backlog's messages.
            fleet = LiveFleet(broker, total_live)
            backlogs = {device_name(i): backlog(device_name(i)) for i in range(BACKLOG_DEVICES)}
            log(f"{len(fleet.schedule)} live messages scheduled, "
                f"{sum(map(len, backlogs.values()))} in backlogs")  # fmt: skip
            fleet.thread.start()
            time.sleep(LIVE_S)
            log("backlog: devices reconnecting ...")
            backlog_ids = {str(m.id) for ms in backlogs.values() for m in ms}
            began = time.time()
            with ThreadPoolExecutor(BACKLOG_AT_ONCE) as pool:
                for future in [
                    pool.submit(send_backlog, broker, d, m) for d, m in backlogs.items()
                ]:
                    future.result()
            log(f"backlog published in {time.time() - began:.1f} s; waiting for the hubs")
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            with psycopg.connect(url, autocommit=True) as conn:
                while True:
                    stored = conn.execute(
                        "SELECT count(*) FROM messages WHERE sent_at < %s", (BACKLOG_BEFORE,)
                    ).fetchone()[0]
                    if stored == len(backlog_ids) or time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
            fleet.close()
            time.sleep(3)  # the live messages in flight land
            with psycopg.connect(url) as conn:
                rows = dict(
                    (str(i), s.timestamp())
                    for i, s in conn.execute("SELECT id, stored_at FROM messages").fetchall()
                )
                drained = max(rows[i] for i in backlog_ids if i in rows)
                during = conn.execute(
                    "SELECT count(*) FROM messages WHERE stored_at BETWEEN to_timestamp(%s) "
                    "AND to_timestamp(%s)",
                    (began, drained),
                ).fetchone()[0]
                detections = conn.execute("SELECT count(*) FROM detections").fetchone()[0]
        finally:
            for replica in replicas:
                replica.stop()
    sent = set(fleet.published) | backlog_ids
    lost = len(sent - rows.keys())
    expected_detections = fleet.expected_detections_of(rows) + 2 * len(backlog_ids & rows.keys())
    duplicated = (len(rows) - len(sent & rows.keys())) + (detections - expected_detections)
    latencies = [(rows[i] - t) * 1000 for i, t in fleet.published.items() if i in rows]
    log(f"{len(fleet.published)} live messages, {len(backlog_ids)} backlog messages, "
        f"{len(rows)} stored, {detections} detections")  # fmt: skip
    calm = [(rows[i] - t) * 1000 for i, t in fleet.published.items() if i in rows and t < began]
    flood = [(rows[i] - t) * 1000 for i, t in fleet.published.items() if i in rows and t >= began]
    log(f"live p95 before the backlog: {p95(calm):.0f} ms ({len(calm)} messages); "
        f"from its start on: {p95(flood):.0f} ms ({len(flood)})")  # fmt: skip
    print(f"hub_ingest_msgs_per_s: {during / (drained - began):.0f} /s")
    print(f"hub_ingest_latency_p95: {p95(latencies):.0f} ms")
    print(f"hub_backlog_drain_s: {drained - began:.1f} s")
    print(f"hub_lost: {lost}")
    print(f"hub_duplicated: {duplicated}")
    return 0 if lost == 0 and duplicated == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
