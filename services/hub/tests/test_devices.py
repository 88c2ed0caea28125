"""The devices unchanged: the messenger's own MQTT and HTTP messengers, as a device runs them,
deliver to the hub, and what they send again is stored once."""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg

from acoustack import __version__, schema
from acoustack_hub.testing import detection_message, heartbeat_message, wait_for
from acoustack_messenger.messengers import HttpMessenger, MqttMessenger


def test_the_messengers_of_real_devices_deliver_to_the_hub_once(
    hub_replicas, hub_mqtt, hub_database_url
):
    hub = hub_replicas[0].start()
    topic = hub.env["HUB_SUBSCRIBE_TOPIC"]
    outbox = [detection_message(i) for i in range(300)]
    mqtt_device = MqttMessenger(hub_mqtt.host, hub_mqtt.port, topic, "meadow-mqtt")
    try:
        responses = mqtt_device.send_messages(outbox)
        again = mqtt_device.send_messages(outbox[:50])  # a run sending again what it had sent
    finally:
        mqtt_device.close()
    assert {r.status for r in responses + again} == {schema.ResponseStatus.SUCCESS}

    http_device = HttpMessenger(f"{hub.url}/messages", device_id="meadow-http")
    heartbeat = heartbeat_message("meadow-http", status="ok", free_storage=12.5)
    for message in (*outbox[:3], heartbeat, heartbeat):
        response = http_device.send_message(message)
        assert response.status is schema.ResponseStatus.SUCCESS, response.content

    def stored():
        with psycopg.connect(hub_database_url) as conn:
            return dict(
                conn.execute("SELECT device_id, count(*) FROM messages GROUP BY 1").fetchall()
            )

    # The three POSTed detections were already stored from meadow-mqtt: kept once, as they came.
    wait_for(lambda: stored() == {"meadow-mqtt": 300, "meadow-http": 1})
    device = hub.get("/devices/meadow-http")
    assert device["status"] == "ok" and device["metrics"] == {"free_storage": 12.5}
    assert device["software_version"] == "acoustack 0.1.0"
    over_mqtt = hub.get("/devices/meadow-mqtt")
    assert over_mqtt["last_detection_at"] is not None
    # The software version over MQTT too: the messenger's user property `software`.
    assert over_mqtt["software_version"] == f"acoustack {__version__}"


def test_the_registry_keeps_where_each_device_is_from_its_newest_heartbeat(
    hub_replicas, hub_database_url
):
    """The map's data: the deployment of the newest heartbeat; an older one arriving late, or a
    heartbeat without a deployment (an older messenger), leaves the place as it was; a device
    that never said where it is has none; a deployment that is not one is refused, named."""
    hub = hub_replicas[0].start()
    device = HttpMessenger(f"{hub.url}/messages", device_id="moor")
    now = schema.utc_now()
    moor = schema.HeartbeatDeployment(
        id=uuid.uuid4(), name="moor-2026", latitude=54.3, longitude=-2.1
    )
    earlier = moor.model_copy(update={"id": uuid.uuid4(), "name": "old site", "latitude": 50.0})
    for message in (
        heartbeat_message("moor", sent_at=now, deployment=moor),
        heartbeat_message("moor", sent_at=now - dt.timedelta(minutes=5), deployment=earlier),
        heartbeat_message("moor", sent_at=now + dt.timedelta(seconds=1)),
    ):
        assert device.send_message(message).status is schema.ResponseStatus.SUCCESS
    unplaced = HttpMessenger(f"{hub.url}/messages", device_id="shed")
    assert unplaced.send_message(heartbeat_message("shed")).status is schema.ResponseStatus.SUCCESS

    got = {d["device_id"]: d for d in hub.get("/devices")}
    assert (got["moor"]["deployment_name"], got["moor"]["latitude"]) == ("moor-2026", 54.3)
    assert got["moor"]["longitude"] == -2.1 and got["moor"]["deployment_id"] == str(moor.id)
    assert got["shed"]["latitude"] is None and got["shed"]["deployment_name"] is None

    bad = heartbeat_message("moor", deployment=moor)
    bad.content = bad.content.replace('"latitude":54.3', '"latitude":154.3')
    response = device.send_message(bad)
    assert response.status is not schema.ResponseStatus.SUCCESS
    [rejected] = hub.get("/rejected")
    assert rejected["reason"].startswith("not a valid message: deployment.latitude:")
    assert hub.get("/devices/moor")["latitude"] == 54.3
