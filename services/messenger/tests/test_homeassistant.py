"""Home Assistant MQTT discovery against the machine's real Mosquitto, through the messenger's
own tasks over the real storage service: what Home Assistant would read on its broker."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator

import pytest
from paho.mqtt import client as mqtt

from acoustack import schema
from acoustack.celery_app import create_app
from acoustack.testing import factories
from acoustack_messenger.tasks import MessengerContext, register_tasks
from acoustack_messenger.testing import Subscriber

# The MQTT sensor's configuration variables, as Home Assistant documents them
# (https://www.home-assistant.io/integrations/sensor.mqtt/), and the device's.
SENSOR_FIELDS = {
    "availability", "availability_mode", "availability_template", "availability_topic",
    "default_entity_id", "device", "device_class", "enabled_by_default", "encoding",
    "entity_category", "entity_picture", "expire_after", "force_update", "icon",
    "json_attributes_template", "json_attributes_topic", "last_reset_value_template", "name",
    "options", "payload_available", "payload_not_available", "platform", "qos", "state_class",
    "state_topic", "suggested_display_precision", "unique_id", "unit_of_measurement",
    "value_template",
}  # fmt: skip
DEVICE_FIELDS = {
    "configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model",
    "model_id", "name", "serial_number", "suggested_area", "sw_version", "via_device",
}  # fmt: skip
AVAILABILITY_FIELDS = {"payload_available", "payload_not_available", "topic", "value_template"}
SENSOR_DEVICE_CLASSES = {"data_size", "duration", None}


@pytest.fixture
def context(store, tmp_path) -> Iterator[MessengerContext]:
    made = MessengerContext("unused:1", tmp_path, store=store)
    yield made
    made.close_messengers()


@pytest.fixture
def tasks(context):
    return register_tasks(create_app("amqp://guest:guest@127.0.0.1:5672//"), context)


@pytest.fixture
def prefix() -> str:
    return f"ha-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def discovery(mqtt_broker, prefix) -> Iterator[Subscriber]:
    watcher = Subscriber(mqtt_broker, prefix)
    yield watcher
    watcher.close()


def species_output(recording_id, species_scores: list[tuple[str, float]]) -> schema.ModelOutput:
    detections = []
    for species, score in species_scores:
        detection = factories.detection(n_tags=0, detection_score=score)
        tags = [schema.PredictedTag(tag=schema.Tag(key="species", value=species), confidence=score)]
        detections.append(detection.model_copy(update={"tags": tags, "id": uuid.uuid4()}))
    return factories.model_output(recording_id, detections=detections)


def configs_of(received) -> dict[str, dict]:
    return {r.topic: json.loads(r.payload) for r in received if r.topic.endswith("/config")}


def test_the_device_and_its_sensors_are_announced_and_kept_current(
    tasks, store, context, mqtt_broker, topic, prefix, subscriber, discovery
):
    deployment = store.start_deployment("meadow")
    now = dt.datetime.now(dt.UTC)
    recording = factories.recording(deployment.id, started_at=now - dt.timedelta(minutes=2))
    store.store_recording(recording)
    store.store_model_output(
        species_output(
            recording.id,
            [
                ("Myotis daubentonii", 0.91),
                ("Pipistrellus pipistrellus", 0.8),
                ("Myotis daubentonii", 0.7),
            ],
        )
    )
    config = {
        "messaging": {
            "mqtt_host": mqtt_broker.host,
            "mqtt_port": mqtt_broker.port,
            "mqtt_topic": topic,
            "homeassistant_prefix": prefix,
        }
    }
    tasks["send_messages"](program_config=config)
    device = store.device_id()
    node = f"acoustack_{device.replace('-', '_')}"
    configs = {}
    while len(configs) < 7:  # 5 fixed sensors and one per species
        configs.update(configs_of([discovery.next(timeout_s=10)]))
    assert set(configs) == {
        f"{prefix}/sensor/{node}/{name}/config"
        for name in ("last_detection", "status", "free_disk", "last_recording_age",
                     "outbox_backlog", "detections_today_myotis_daubentonii",
                     "detections_today_pipistrellus_pipistrellus")
    }  # fmt: skip
    # Retained: a Home Assistant that subscribes later gets them all.
    late = Subscriber(mqtt_broker, prefix)
    try:
        kept = [late.next(timeout_s=10) for _ in configs]
    finally:
        late.close()
    assert all(r.retain for r in kept) and configs_of(kept) == configs
    availability = f"{topic}/availability/{device}"
    for config_topic, sensor in configs.items():
        assert set(sensor) <= SENSOR_FIELDS, set(sensor) - SENSOR_FIELDS
        assert set(sensor["device"]) <= DEVICE_FIELDS
        assert sensor["device"]["identifiers"] == [node]
        assert sensor["device"]["name"] == f"acoustack {device}"
        assert sensor["unique_id"] == f"{node}_{config_topic.split('/')[-2]}"
        assert sensor["state_topic"].startswith(f"{topic}/{device}/")
        [available] = sensor["availability"]
        assert set(available) <= AVAILABILITY_FIELDS
        assert available == {
            "topic": availability,
            "payload_available": "online",
            "payload_not_available": "offline",
        }
        assert sensor.get("device_class") in SENSOR_DEVICE_CLASSES
    last = configs[f"{prefix}/sensor/{node}/last_detection/config"]
    assert last["value_template"] == "{{ value_json.species }}"
    assert (
        last["json_attributes_topic"] == last["state_topic"] == f"{topic}/{device}/last_detection"
    )
    today = configs[f"{prefix}/sensor/{node}/detections_today_myotis_daubentonii/config"]
    assert today["value_template"] == '{{ value_json["Myotis daubentonii"] | default(0) }}'
    assert today["state_class"] == "total_increasing"
    assert configs[f"{prefix}/sensor/{node}/status/config"]["entity_category"] == "diagnostic"
    # The states those sensors read, retained.
    state = json.loads(subscriber.next(topic=f"{topic}/{device}/detections_today").payload)
    assert state == {"Myotis daubentonii": 2, "Pipistrellus pipistrellus": 1}
    newest = json.loads(subscriber.next(topic=f"{topic}/{device}/last_detection").payload)
    assert newest["species"] in ("Myotis daubentonii", "Pipistrellus pipistrellus")
    assert newest["recording_id"] == str(recording.id)
    assert dt.datetime.fromisoformat(newest["time"]) == recording.started_at
    assert subscriber.next(topic=availability).payload == b"online"
    # The heartbeat keeps the diagnostics current.
    assert tasks["heartbeat"](program_config=config)["sent"]
    diagnostics = json.loads(subscriber.next(topic=f"{topic}/{device}/diagnostics").payload)
    assert diagnostics["status"].startswith(("ok", "degraded"))
    assert diagnostics["free_disk_gb"] > 0 and diagnostics["outbox_backlog"] >= 0
    assert 100 < diagnostics["last_recording_age_s"] < 600
    # Home Assistant restarting says so on its status topic: everything is announced again.
    discovery.drain()
    announcer = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    announcer.connect(mqtt_broker.host, mqtt_broker.port)
    announcer.loop_start()
    announcer.publish(f"{prefix}/status", "online", qos=1).wait_for_publish(5)
    again = {}
    while len(again) < 7:
        again.update(configs_of([discovery.next(timeout_s=10)]))
    assert again == configs
    announcer.publish(f"{prefix}/status", "offline", qos=1).wait_for_publish(5)
    announcer.disconnect()
    announcer.loop_stop()
    with pytest.raises(AssertionError, match="nothing arrived"):
        discovery.next(timeout_s=1, topic=f"{prefix}/sensor/{node}/status/config")


def test_discovery_switched_off_announces_nothing(
    tasks, store, mqtt_broker, topic, prefix, subscriber, discovery
):
    store.store_message(schema.Message(content="{}"))
    config = {
        "messaging": {
            "mqtt_host": mqtt_broker.host,
            "mqtt_port": mqtt_broker.port,
            "mqtt_topic": topic,
            "homeassistant_prefix": prefix,
            "homeassistant_discovery": False,
        }
    }
    assert tasks["send_messages"](program_config=config)["responses"] == {"success": 1}
    assert tasks["heartbeat"](program_config=config)["sent"]
    subscriber.next(topic=topic)  # the message itself went out
    with pytest.raises(AssertionError, match="nothing arrived"):
        discovery.next(timeout_s=2)
    assert not [
        r for r in subscriber.drain() if r.topic.startswith(f"{topic}/") and "/diag" in r.topic
    ]


def test_switching_discovery_off_takes_the_announced_sensors_back(
    tasks, store, mqtt_broker, topic, prefix, discovery
):
    config = {
        "messaging": {
            "mqtt_host": mqtt_broker.host,
            "mqtt_port": mqtt_broker.port,
            "mqtt_topic": topic,
            "homeassistant_prefix": prefix,
        }
    }
    tasks["send_messages"](program_config=config)
    announced = {discovery.next(timeout_s=10).topic for _ in range(5)}
    config["messaging"]["homeassistant_discovery"] = False
    tasks["send_messages"](program_config=config)
    taken_back = {}
    while len(taken_back) < len(announced):
        received = discovery.next(timeout_s=10)
        taken_back[received.topic] = received.payload
    assert taken_back == dict.fromkeys(announced, b"")
    late = Subscriber(mqtt_broker, prefix)  # nothing is kept on the broker
    try:
        with pytest.raises(AssertionError, match="nothing arrived"):
            late.next(timeout_s=1)
    finally:
        late.close()
