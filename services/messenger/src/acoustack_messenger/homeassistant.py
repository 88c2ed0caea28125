"""Home Assistant MQTT discovery: the device and its sensors, announced on retained config topics
(``<prefix>/sensor/<node>/<object>/config``), and the states they read.

One device per acoustack device, named from its id. Its sensors:

- "Last detection": the species as state; species, score, time and recording as attributes;
- "Detections today: <species>", one per species seen since midnight (UTC), counting up
  (``state_class: total_increasing``, so the midnight reset reads as a new day);
- diagnostics from the heartbeat: status, free disk, last recording age, outbox backlog.

Every sensor is available while the messenger's MQTT connection is up: the retained ``online`` on
its availability topic, which the broker replaces by ``offline`` (the last will) when the
connection ends. States are retained under ``<mqtt_topic>/<device id>/`` (beside the
availability topic, so one ACL covers all). The configs are published again whenever Home
Assistant says it started (``<prefix>/status`` = ``online``), as its documentation asks.

This module builds topics and payloads only; ``MqttMessenger`` publishes them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from acoustack import __version__
from acoustack.v1 import store_pb2 as spb

Publication = tuple[str, str]  # (topic, payload), published retained


def slug(text: str) -> str:
    """A topic level and id part from any text: lower case letters, digits and underscores."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "unknown"


@dataclass(frozen=True)
class HomeAssistantDevice:
    device_id: str
    mqtt_topic: str  # messaging.mqtt_topic
    availability_topic: str
    prefix: str = "homeassistant"

    @property
    def node(self) -> str:
        return f"acoustack_{slug(self.device_id)}"

    @property
    def state_topic(self) -> str:
        return f"{self.mqtt_topic}/{self.device_id}"

    @property
    def birth_topic(self) -> str:
        return f"{self.prefix}/status"

    @property
    def last_detection_topic(self) -> str:
        return f"{self.state_topic}/last_detection"

    @property
    def detections_today_topic(self) -> str:
        return f"{self.state_topic}/detections_today"

    @property
    def diagnostics_topic(self) -> str:
        return f"{self.state_topic}/diagnostics"

    def _device(self) -> dict:
        return {
            "identifiers": [self.node],
            "name": f"acoustack {self.device_id}",
            "manufacturer": "acoustack",
            "model": "bioacoustic sensor",
            "serial_number": self.device_id,
            "sw_version": __version__,
        }

    def _sensor(self, object_id: str, name: str, state_topic: str, **fields) -> Publication:
        config = {
            "name": name,
            "unique_id": f"{self.node}_{object_id}",
            "state_topic": state_topic,
            "availability": [
                {
                    "topic": self.availability_topic,
                    "payload_available": "online",
                    "payload_not_available": "offline",
                }
            ],
            "device": self._device(),
            **fields,
        }
        topic = f"{self.prefix}/sensor/{self.node}/{object_id}/config"
        return topic, json.dumps(config, separators=(",", ":"), sort_keys=True)

    def discovery(self, species: Iterable[str] = ()) -> list[Publication]:
        """Every sensor's config: the fixed ones, and one per species counted today."""
        configs = [
            self._sensor(
                "last_detection",
                "Last detection",
                self.last_detection_topic,
                value_template="{{ value_json.species }}",
                json_attributes_topic=self.last_detection_topic,
                icon="mdi:bat",
            ),
            self._sensor(
                "status",
                "Status",
                self.diagnostics_topic,
                value_template="{{ value_json.status }}",
                entity_category="diagnostic",
                icon="mdi:heart-pulse",
            ),
            self._sensor(
                "free_disk",
                "Free disk",
                self.diagnostics_topic,
                value_template="{{ value_json.free_disk_gb }}",
                unit_of_measurement="GB",
                device_class="data_size",
                state_class="measurement",
                entity_category="diagnostic",
            ),
            self._sensor(
                "last_recording_age",
                "Last recording age",
                self.diagnostics_topic,
                value_template="{{ value_json.last_recording_age_s }}",
                unit_of_measurement="s",
                device_class="duration",
                state_class="measurement",
                entity_category="diagnostic",
            ),
            self._sensor(
                "outbox_backlog",
                "Outbox backlog",
                self.diagnostics_topic,
                value_template="{{ value_json.outbox_backlog }}",
                unit_of_measurement="messages",
                state_class="measurement",
                entity_category="diagnostic",
                icon="mdi:tray-full",
            ),
        ]
        for name in sorted(set(species)):
            configs.append(
                self._sensor(
                    f"detections_today_{slug(name)}",
                    f"Detections today: {name}",
                    self.detections_today_topic,
                    value_template=f"{{{{ value_json[{json.dumps(name)}] | default(0) }}}}",
                    unit_of_measurement="detections",
                    state_class="total_increasing",
                    icon="mdi:counter",
                )
            )
        return configs


def best_species(tags: Iterable) -> tuple[str, float] | None:
    """The ``species`` tag with the highest confidence, as (species, confidence)."""
    found = [(t.tag.value, t.confidence) for t in tags if t.tag.key == "species" and t.tag.value]
    return max(found, key=lambda pair: pair[1], default=None)


def last_detection_state(species: str, score: float, at: dt.datetime, recording_id: str) -> str:
    return json.dumps(
        {
            "species": species,
            "score": round(score, 4),
            "time": at.astimezone(dt.UTC).isoformat(),
            "recording_id": recording_id,
        },
        separators=(",", ":"),
    )


def detections_today_state(counts: Counter[str]) -> str:
    return json.dumps(dict(sorted(counts.items())), separators=(",", ":"))


def diagnostics_state(
    status: str, free_disk_gb: float, last_recording_age_s: float, outbox_backlog: int
) -> str:
    return json.dumps(
        {
            "status": status,
            "free_disk_gb": round(free_disk_gb, 2),
            "last_recording_age_s": round(last_recording_age_s, 1),
            "outbox_backlog": outbox_backlog,
        },
        separators=(",", ":"),
    )


class HomeAssistantReporter:
    """Keeps one MQTT messenger's Home Assistant device current: its discovery (at every
    connection, and when Home Assistant starts), the detection sensors after each messaging run,
    the diagnostics at each heartbeat. ``store`` is storage's client (detections); ``messenger``
    an ``MqttMessenger``."""

    def __init__(self, store, messenger, device: HomeAssistantDevice) -> None:
        self.store = store
        self.messenger = messenger
        self.device = device
        self.species: set[str] = set()
        messenger.announcements = lambda: self.device.discovery(self.species)
        messenger.announce_on = device.birth_topic

    def report_detections(self, now: dt.datetime | None = None) -> None:
        now = now or dt.datetime.now(dt.UTC)
        midnight = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        today = Counter()
        for hit in self.store.list_detections(started_from=midnight, started_to=now, limit=10_000):
            best = best_species(hit.detection.tags)
            today[best[0] if best else "unknown"] += 1
        new = set(today) - self.species
        self.species |= new
        if new:  # a species first seen today gets its sensor
            for topic, payload in self.device.discovery(new)[-len(new) :]:
                self.messenger.publish(topic, payload)
        self.messenger.publish(self.device.detections_today_topic, detections_today_state(today))
        newest = self.store.list_detections(order=spb.SORT_ORDER_NEWEST_FIRST, limit=1)
        for hit in newest:
            best = best_species(hit.detection.tags) or ("unknown", hit.detection.detection_score)
            self.messenger.publish(
                self.device.last_detection_topic,
                last_detection_state(
                    best[0],
                    best[1],
                    hit.recording_started_at.ToDatetime(tzinfo=dt.UTC),
                    hit.recording_id,
                ),
            )

    def report_diagnostics(
        self, status: str, free_disk_gb: float, last_recording_age_s: float, backlog: int
    ) -> None:
        self.messenger.publish(
            self.device.diagnostics_topic,
            diagnostics_state(status, free_disk_gb, last_recording_age_s, backlog),
        )
