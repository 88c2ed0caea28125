"""Alarms on a hub process: each episode opens once, is sent on once by webhook and MQTT, and
closes when its rule stops holding; a webhook that is down gets it later, once."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request

from acoustack_hub.testing import detection_message, heartbeat_message, wait_for
from acoustack_messenger.testing import Subscriber


def _post(hub, device_id: str, message) -> None:
    request = urllib.request.Request(
        f"{hub.url}/messages",
        data=message.content.encode(),
        headers={"Idempotency-Key": str(message.id), "X-Device-Id": device_id},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def _events(sink, kind: str) -> list[tuple[str, str]]:
    found = [json.loads(r.body) for r in sink.posts()]
    return [(e["device_id"], e["state"]) for e in found if e["kind"] == kind]


def test_silent_and_degraded_devices_alarm_once_per_episode(hub_replicas, hub_mqtt, http_sink):
    alarm_topic = f"{hub_replicas[0].env['HUB_SUBSCRIBE_TOPIC']}-alarms"
    fast = {
        "HUB_HEARTBEAT_INTERVAL_S": "1",
        "HUB_SILENT_INTERVALS": "2",
        "HUB_ALARM_CHECK_S": "0.3",
        "HUB_ALARM_WEBHOOK_URL": f"{http_sink.url}/ok",
        "HUB_ALARM_MQTT_TOPIC": alarm_topic,
    }
    subscriber = Subscriber(hub_mqtt, alarm_topic)
    try:
        for replica in hub_replicas:  # two replicas evaluating: still one alarm per episode
            replica.env |= fast
            replica.start()
        hub = hub_replicas[0]
        _post(hub, "meadow-01", heartbeat_message("meadow-01"))
        wait_for(lambda: _events(http_sink, "silent") == [("meadow-01", "open")], 20)
        time.sleep(2)  # still silent: no second alarm
        assert _events(http_sink, "silent") == [("meadow-01", "open")]
        assert [a["kind"] for a in hub.get("/alarms?open=1")] == ["silent"]
        assert hub.get("/devices/meadow-01")["open_alarms"] == ["silent"]
        opened = json.loads(subscriber.next(10).payload)
        assert (opened["device_id"], opened["kind"], opened["state"]) == (
            "meadow-01",
            "silent",
            "open",
        )
        assert "no message for" in opened["detail"]

        # Back, degraded: the silence closes, a degraded episode opens.
        _post(hub, "meadow-01", heartbeat_message("meadow-01", status="degraded: disk full"))
        wait_for(lambda: ("meadow-01", "closed") in _events(http_sink, "silent"), 20)
        wait_for(lambda: _events(http_sink, "degraded") == [("meadow-01", "open")], 20)
        degraded = [a for a in hub.get("/alarms") if a["kind"] == "degraded"]
        assert degraded[0]["detail"] == "degraded: disk full"
        # Silent again: a new silence episode (the degraded one stays open, once).
        wait_for(lambda: _events(http_sink, "silent").count(("meadow-01", "open")) == 2, 20)
        assert _events(http_sink, "degraded") == [("meadow-01", "open")]
        assert len([a for a in hub.get("/alarms") if a["kind"] == "silent"]) == 2
    finally:
        subscriber.close()


def test_detections_stopped_while_recordings_go_on(hub_replicas, http_sink):
    hub = hub_replicas[0]
    hub.env |= {
        "HUB_HEARTBEAT_INTERVAL_S": "5",
        "HUB_DETECTIONS_STOPPED_S": "2",
        "HUB_ALARM_CHECK_S": "0.3",
        "HUB_ALARM_WEBHOOK_URL": f"{http_sink.url}/ok",
    }
    hub.start()
    now = dt.datetime.now(dt.UTC)
    _post(hub, "meadow-02", detection_message(3, created_at=now))
    _post(hub, "meadow-03", detection_message(4, created_at=now))
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:  # meadow-02 records on; meadow-03 stopped recording
        _post(hub, "meadow-02", heartbeat_message("meadow-02", last_recording_age=3.0))
        _post(hub, "meadow-03", heartbeat_message("meadow-03", last_recording_age=3600.0))
        time.sleep(0.5)
    assert _events(http_sink, "detections_stopped") == [("meadow-02", "open")]
    _post(hub, "meadow-02", detection_message(5, created_at=dt.datetime.now(dt.UTC)))
    wait_for(lambda: ("meadow-02", "closed") in _events(http_sink, "detections_stopped"), 10)


def test_an_alarm_the_webhook_did_not_take_is_sent_later_once(hub_replicas, http_sink):
    hub = hub_replicas[0]
    hub.env |= {
        "HUB_HEARTBEAT_INTERVAL_S": "1",
        "HUB_SILENT_INTERVALS": "1",
        "HUB_ALARM_CHECK_S": "0.3",
        "HUB_ALARM_WEBHOOK_URL": f"{http_sink.url}/fail",  # answers 500
    }
    hub.start()
    _post(hub, "meadow-04", heartbeat_message("meadow-04"))
    wait_for(lambda: len(http_sink.posts()) >= 2, 20)  # tried, and tried again
    alarm = hub.get("/alarms")[0]
    assert alarm["notified_open_at"] is None and "HTTP Error 500" in alarm["notify_error"]
    # The webhook fixed (the hub restarted with a good one): the opening goes, once.
    hub.stop()
    hub.env["HUB_ALARM_WEBHOOK_URL"] = f"{http_sink.url}/ok"
    hub.start()

    def delivered():
        return [json.loads(r.body) for r in http_sink.posts() if r.path == "/ok"]

    wait_for(lambda: delivered(), 20)
    time.sleep(1.5)
    assert [(e["device_id"], e["state"]) for e in delivered()] == [("meadow-04", "open")]
    assert hub.get("/alarms")[0]["notify_error"] is None
