"""Two hub replicas on one shared subscription, on a real Mosquitto (with the hub broker's
configuration) and a real Postgres: every message stored exactly once, whatever the broker and
the devices do (twice, out of order, a replica killed mid-batch); bad payloads stored as
rejected with their reason while the hub goes on."""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import urllib.error
import urllib.request
import uuid

import psycopg

from acoustack import schema
from acoustack_hub.testing import (
    detection_message,
    heartbeat_message,
    publish_as_device,
    wait_for,
)


def _count(url: str, sql: str, params=()) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchone()[0]


def _fleet_traffic(n: int, devices: int = 20) -> list[tuple[str, object]]:
    start = dt.datetime(2026, 6, 1, 21, 0, tzinfo=dt.UTC)
    sent = []
    for i in range(n):
        device = f"meadow-{i % devices:02d}"
        when = start + dt.timedelta(seconds=i)
        if i % 10 == 0:
            sent.append((device, heartbeat_message(device, sent_at=when, last_recording_age=5.0)))
        else:
            sent.append((device, detection_message(i, created_at=when)))
    return sent


def test_two_replicas_store_every_message_once_delivered_twice_and_out_of_order(
    hub_replicas, hub_mqtt, hub_database_url
):
    for replica in hub_replicas:
        replica.start()
    sent = _fleet_traffic(1500)
    twice = sent + random.Random(1).sample(sent, 700)  # redeliveries
    random.Random(2).shuffle(twice)  # out of order
    publish_as_device(hub_mqtt, hub_replicas[0].env["HUB_SUBSCRIBE_TOPIC"], twice, "sim-1")

    wait_for(
        lambda: (
            _count(hub_database_url, "SELECT count(*) FROM messages") == len(sent)
            and sum(r.taken() for r in hub_replicas) >= len(twice)
        ),
        what="every message taken",
    )
    ids = {str(m.id) for _, m in sent}
    with psycopg.connect(hub_database_url) as conn:
        stored = {str(r[0]) for r in conn.execute("SELECT id FROM messages").fetchall()}
        detections = conn.execute("SELECT count(*), count(DISTINCT id) FROM detections").fetchone()
        rejected = conn.execute("SELECT count(*) FROM rejected_messages").fetchone()[0]
    assert stored == ids
    assert detections[0] == detections[1] == 2 * sum(1 for i in range(1500) if i % 10)
    assert rejected == 0
    # The shared subscription split the load: each replica took a good share.
    shares = [r.taken() for r in hub_replicas]
    assert min(shares) > 0.2 * len(twice), shares
    # The registry kept each device's newest heartbeat although they came out of order.
    device = hub_replicas[1].get("/devices/meadow-00")
    newest = max(
        json.loads(m.content)["sent_at"]
        for d, m in sent
        if d == "meadow-00" and '"metrics"' in m.content
    )
    assert dt.datetime.fromisoformat(device["last_heartbeat_at"]) == dt.datetime.fromisoformat(
        newest
    )
    assert device["status"] == "ok" and device["metrics"] == {"last_recording_age": 5.0}


def test_a_replica_killed_mid_batch_loses_and_doubles_nothing(
    hub_replicas, hub_mqtt, hub_database_url
):
    killed, other = hub_replicas
    # Big, slow batches, so the kill lands while messages are received but not acknowledged.
    killed.env |= {"HUB_BATCH_SIZE": "400", "HUB_BATCH_WAIT_S": "0.5"}
    killed.start()
    other.start()
    sent = _fleet_traffic(4000)
    topic = killed.env["HUB_SUBSCRIBE_TOPIC"]
    publisher = threading.Thread(target=publish_as_device, args=(hub_mqtt, topic, sent, "sim-2"))
    publisher.start()
    wait_for(lambda: killed.taken() >= 200, what="the replica storing its first batches")
    killed.kill()
    assert _count(hub_database_url, "SELECT count(*) FROM messages") < len(sent)  # mid-run
    publisher.join(120)
    # Back with the same client id (a StatefulSet's pod): the broker hands back what it had not
    # acknowledged.
    killed.start()
    wait_for(
        lambda: _count(hub_database_url, "SELECT count(*) FROM messages") == len(sent),
        what=f"all {len(sent)} messages stored",
    )
    with psycopg.connect(hub_database_url) as conn:
        stored = {str(r[0]) for r in conn.execute("SELECT id FROM messages").fetchall()}
        detections = conn.execute("SELECT count(*), count(DISTINCT id) FROM detections").fetchone()
    assert stored == {str(m.id) for _, m in sent}
    assert detections[0] == detections[1] == 2 * sum(1 for i in range(4000) if i % 10)


def _post(url: str, body: bytes, message_id: str | None, device_id: str | None = "meadow-01"):
    headers = {"Content-Type": "application/json", "User-Agent": "acoustack-messenger/0.1.0"}
    if message_id:
        headers |= {"Idempotency-Key": message_id, "X-Message-Id": message_id}
    if device_id:
        headers["X-Device-Id"] = device_id
    request = urllib.request.Request(f"{url}/messages", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_bad_payloads_are_stored_as_rejected_with_the_reason_and_the_hub_goes_on(
    hub_replicas, hub_mqtt, hub_database_url
):
    hub = hub_replicas[0].start()
    topic = hub.env["HUB_SUBSCRIBE_TOPIC"]

    def raw(content: str) -> schema.Message:
        return schema.Message(content=content)

    bad = [
        ("meadow-01", raw("this is not json {")),
        ("meadow-01", raw('{"schema_version": 7, "status": "ok", "metrics": [], "sent_at": "x"}')),
        ("meadow-01", raw(json.dumps({"padding": "x" * 100_000}))),  # above 64 KiB
        ("meadow-01", raw('{"model_output_id": "not-a-uuid", "detections": []}')),
        ("meadow-01", raw('["a", "list"]')),
    ]
    good = detection_message(7)
    publish_as_device(hub_mqtt, topic, [*bad, ("meadow-01", good)], "sim-3")
    # And over HTTP: not JSON, no message id.
    assert _post(hub.url, b"\xff\xfe not json", str(uuid.uuid4()))[0] == 422
    status, answer = _post(hub.url, good.content.encode(), None)
    assert status == 422 and "Idempotency-Key" in answer["error"]

    wait_for(lambda: _count(hub_database_url, "SELECT count(*) FROM rejected_messages") == 7)
    reasons = {r["message_id"]: r["reason"] for r in hub.get("/rejected")}
    by_id = [reasons[str(m.id)] for _, m in bad]
    assert by_id[0].startswith("not JSON")
    assert by_id[1].startswith("unknown schema version 7")
    assert by_id[2].startswith("too large: 100") and "HUB_MAX_MESSAGE_BYTES" in by_id[2]
    assert "model_output_id" in by_id[3]
    assert by_id[4].startswith("not a JSON object")
    huge = next(r for r in hub.get("/rejected") if r["message_id"] == str(bad[2][1].id))
    assert huge["size_bytes"] > 100_000 and len(huge["payload_head"]) <= 1024
    # The hub is still up and stored the good one after the bad ones.
    assert hub.process.poll() is None
    wait_for(lambda: _count(hub_database_url, "SELECT count(*) FROM messages") == 1)


def test_http_posts_are_stored_once_by_their_idempotency_key_and_queryable(
    hub_replicas, hub_database_url
):
    hub = hub_replicas[0].start()
    night = dt.datetime(2026, 6, 1, 22, 0, tzinfo=dt.UTC)
    myotis = detection_message(1, n_detections=3, created_at=night, species="Myotis mystacinus")
    pipistrelle = detection_message(2, created_at=night + dt.timedelta(hours=2),
                                    species="Pipistrellus")  # fmt: skip
    for message in (myotis, myotis, pipistrelle):  # the first one twice: a retried POST
        status, answer = _post(hub.url, message.content.encode(), str(message.id))
        assert status == 200 and answer == {"id": str(message.id), "kind": "detection"}
    assert _count(hub_database_url, "SELECT count(*) FROM messages") == 2

    assert len(hub.get("/detections?device=meadow-01")) == 5
    assert len(hub.get("/detections?species=Myotis%20mystacinus")) == 3
    assert hub.get("/detections?device=elsewhere") == []
    later = hub.get("/detections?since=2026-06-01T23:00:00Z")
    assert {d["species"] for d in later} == {"Pipistrellus"}
    scores = [d["score"] for d in hub.get("/detections")]
    threshold = sorted(scores)[2]
    assert len(hub.get(f"/detections?min_score={threshold}")) == sum(s >= threshold for s in scores)
    species = hub.get("/species?bucket=hour")
    assert [(s["species"], s["detections"], s["devices_total"]) for s in species] == [
        ("Myotis mystacinus", 3, 1),
        ("Pipistrellus", 2, 1),
    ]
    device = hub.get("/devices/meadow-01")
    assert device["software_version"] == "acoustack 0.1.0"
    # A bad query names its parameter.
    try:
        hub.get("/detections?since=yesterday")
        raise AssertionError("a bad time was taken")
    except urllib.error.HTTPError as exc:
        assert exc.code == 400 and "since" in json.loads(exc.read())["error"]


def test_the_database_away_mid_stream_loses_nothing(hub_replicas, hub_mqtt, hub_database_url):
    """Postgres unreachable (a real cut link between the hub and it): nothing is acknowledged
    meanwhile, the broker keeps it, and everything is stored once the database is back."""
    from urllib.parse import urlsplit, urlunsplit

    from acoustack.testing.proxy import TcpProxy

    url = urlsplit(hub_database_url)
    proxy = TcpProxy(url.hostname, url.port)
    try:
        hub = hub_replicas[0]
        hub.env["HUB_DATABASE_URL"] = urlunsplit(
            url._replace(netloc=f"postgres@127.0.0.1:{proxy.port}")
        )
        hub.start()
        topic = hub.env["HUB_SUBSCRIBE_TOPIC"]
        before, during = _fleet_traffic(600)[:300], _fleet_traffic(600)[300:]
        publish_as_device(hub_mqtt, topic, before, "sim-4")
        wait_for(lambda: _count(hub_database_url, "SELECT count(*) FROM messages") == 300)
        proxy.cut()
        publish_as_device(hub_mqtt, topic, during, "sim-5")
        wait_for(lambda: _get_status(hub, "/healthz") == 503, 20, "the hub saying so")
        assert _count(hub_database_url, "SELECT count(*) FROM messages") == 300
        assert hub.process.poll() is None
        proxy.restore()
        wait_for(lambda: _count(hub_database_url, "SELECT count(*) FROM messages") == 600, 90)
        with psycopg.connect(hub_database_url) as conn:
            stored = {str(r[0]) for r in conn.execute("SELECT id FROM messages").fetchall()}
        assert stored == {str(m.id) for _, m in before + during}
    finally:
        proxy.close()


def _get_status(hub, path: str) -> int:
    try:
        with urllib.request.urlopen(hub.url + path, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_replica_stopped_for_good_leaves_its_share_to_the_other(
    hub_replicas, hub_mqtt, hub_database_url
):
    """SIGTERM (a scale-down, a rolling update): the replica unsubscribes, stores what the broker
    still had for it, ends its session; the other takes everything after, nothing waits for
    the one that is gone (Mosquitto would keep handing a session that stays its share)."""
    leaving, staying = hub_replicas
    leaving.start()
    staying.start()
    sent = _fleet_traffic(4000)
    topic = leaving.env["HUB_SUBSCRIBE_TOPIC"]
    publisher = threading.Thread(target=publish_as_device, args=(hub_mqtt, topic, sent, "sim-6"))
    publisher.start()
    wait_for(lambda: leaving.taken() >= 200, what="the leaving replica storing its first batches")
    assert leaving.stop() == 0
    publisher.join(120)
    # Sent once the replica is gone: had it left its session behind, the broker would keep
    # handing that session its share of these, and they would never be stored.
    after = [(f"meadow-{i % 20:02d}", detection_message(10_000 + i)) for i in range(500)]
    publish_as_device(hub_mqtt, topic, after, "sim-6b")
    total = len(sent) + len(after)
    wait_for(
        lambda: _count(hub_database_url, "SELECT count(*) FROM messages") == total,
        what=f"all {total} messages stored, those sent after the leave by the replica that stayed",
    )
    assert staying.taken() >= len(after)


def test_the_ids_are_read_among_whatever_other_properties_a_publish_carries(
    hub_replicas, hub_mqtt, hub_database_url
):
    """The hub reads a PUBLISH's user properties from its bytes (mqtt_ingest): through the real
    broker, with every other property a PUBLISH may carry, and names outside ASCII."""
    from paho.mqtt import client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    hub = hub_replicas[0].start()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sim-7", protocol=mqtt.MQTTv5)
    client.connect(hub_mqtt.host, hub_mqtt.port)
    client.loop_start()
    sent = [detection_message(i) for i in range(3)]
    try:
        for i, message in enumerate(sent):
            properties = Properties(PacketTypes.PUBLISH)
            properties.PayloadFormatIndicator = 1
            properties.MessageExpiryInterval = 3600
            properties.ContentType = "application/json"
            properties.ResponseTopic = "fleet/answers/é"
            properties.CorrelationData = b"\x00\xffcorrelation"
            properties.UserProperty = [
                ("note", "ünïcödé " * i),
                ("message_id", str(message.id)),
                ("device_id", f"prairie-{i}-Ørsted"),
            ]
            info = client.publish(
                hub.env["HUB_SUBSCRIBE_TOPIC"], message.content, qos=1, properties=properties
            )
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()
    wait_for(lambda: _count(hub_database_url, "SELECT count(*) FROM messages") == 3)
    with psycopg.connect(hub_database_url) as conn:
        rows = dict(conn.execute("SELECT id::text, device_id FROM messages").fetchall())
    assert rows == {str(m.id): f"prairie-{i}-Ørsted" for i, m in enumerate(sent)}
