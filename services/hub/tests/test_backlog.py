"""A device's backlog next to live traffic: devices that set messaging.mqtt_backlog_topic publish
what is older than messaging.mqtt_backlog_age_s there; the hub takes it on a session of its own
(HUB_BACKLOG_TOPIC) and stores live messages first, so they do not wait behind the backlog."""

from __future__ import annotations

import datetime as dt
import threading

import psycopg

from acoustack import schema
from acoustack_hub.ingest import BACKLOG, LIVE, Ingest
from acoustack_hub.payloads import Incoming
from acoustack_hub.store import HubStore
from acoustack_hub.testing import detection_message, heartbeat_message, wait_for
from acoustack_messenger.messengers import MqttMessenger
from acoustack_messenger.testing import Subscriber


def test_live_messages_are_stored_before_a_waiting_backlog(hub_database_url):
    """1,000 backlog messages are waiting when one live message comes: it is in the first batch
    stored, not after the thousand."""
    store = HubStore.open(hub_database_url, max_size=2)
    ingest = Ingest(store, batch_size=100, batch_wait_s=0.0, max_message_bytes=65536)
    done = threading.Semaphore(0)
    now = dt.datetime.now(dt.UTC)

    def incoming(message: schema.Message, device: str) -> Incoming:
        return Incoming(message.content.encode(), str(message.id), device, "mqtt", now)

    backlog = [detection_message(i) for i in range(1000)]
    for message in backlog:
        ingest.submit(incoming(message, "back"), lambda _item: done.release(), BACKLOG)
    live = heartbeat_message("live")
    ingest.submit(incoming(live, "live"), lambda _item: done.release(), LIVE)
    ingest.start()
    try:
        for _ in range(1001):
            assert done.acquire(timeout=60), "not every message was stored"
    finally:
        ingest.stop()
        store.close()
    with psycopg.connect(hub_database_url) as conn:
        later = conn.execute(
            "SELECT count(*) FROM messages WHERE device_id = 'back' AND stored_at > "
            "(SELECT stored_at FROM messages WHERE id = %s)",
            (live.id,),
        ).fetchone()[0]
        total = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    assert total == 1001
    assert later >= 900  # stored in the first batch of 100, ahead of the backlog


def test_a_device_backlog_goes_to_its_topic_and_the_hub_stores_both_once(
    hub_replicas, hub_mqtt, hub_database_url
):
    replica = hub_replicas[0]
    live_topic = replica.env["HUB_SUBSCRIBE_TOPIC"]
    backlog_topic = f"{live_topic}-backlog"
    replica.env["HUB_BACKLOG_TOPIC"] = backlog_topic
    hub = replica.start()
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    # Put in the outbox two hours ago, while the device was offline.
    outbox = [detection_message(i).model_copy(update={"created_at": old}) for i in range(200)]
    fresh = heartbeat_message("fen")  # made now
    # Watchers of both topics (plain subscriptions, beside the hub's shared ones).
    watch_live, watch_backlog = (
        Subscriber(hub_mqtt, live_topic),
        Subscriber(hub_mqtt, backlog_topic),
    )
    device = MqttMessenger(
        hub_mqtt.host, hub_mqtt.port, live_topic, "fen",
        backlog_topic=backlog_topic, backlog_age_s=600,
    )  # fmt: skip
    try:
        responses = device.send_messages([*outbox, fresh, *outbox[:20]])  # 20 sent again
    finally:
        device.close()
    assert {r.status for r in responses} == {schema.ResponseStatus.SUCCESS}
    try:
        # The old ones on the backlog topic, the fresh one on the live topic.
        assert watch_live.next(topic=live_topic).payload == fresh.content.encode()
        ids = [watch_backlog.next(topic=backlog_topic).user_properties["message_id"]
               for _ in range(220)]  # fmt: skip
        assert set(ids) == {str(m.id) for m in outbox}
    finally:
        watch_live.close()
        watch_backlog.close()

    def stored() -> int:
        with psycopg.connect(hub_database_url) as conn:
            return conn.execute("SELECT count(*) FROM messages").fetchone()[0]

    wait_for(lambda: stored() == 201, what="the backlog and the live message stored")
    assert hub.get("/devices/fen")["status"] == "ok"
    with psycopg.connect(hub_database_url) as conn:
        topics = dict(conn.execute("SELECT kind, count(*) FROM messages GROUP BY 1").fetchall())
    assert topics == {"detection": 200, "heartbeat": 1}
