"""The hub's parts, built from its settings: the store (migrated), the ingest loop, the MQTT
subscriber, the HTTP API, and the alarm loop."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field
from functools import partial

from acoustack_hub.alarms import (
    AlarmRules,
    MqttNotifier,
    Notifier,
    WebhookNotifier,
    evaluate,
    notify_pending,
)
from acoustack_hub.http_api import HubHttp
from acoustack_hub.ingest import BACKLOG, Ingest
from acoustack_hub.mqtt_ingest import MqttIngest
from acoustack_hub.settings import HubSettings
from acoustack_hub.store import HubStore

log = logging.getLogger("acoustack_hub")


def alarm_rules(settings: HubSettings) -> AlarmRules:
    return AlarmRules(
        heartbeat_interval_s=settings.heartbeat_interval_s,
        silent_intervals=settings.silent_intervals,
        detections_stopped_s=settings.detections_stopped_s,
        recording_fresh_s=settings.recording_fresh_s,
    )


@dataclass
class Hub:
    settings: HubSettings
    store: HubStore
    ingest: Ingest
    http: HubHttp
    mqtt: MqttIngest | None
    notifiers: list[Notifier]
    backlog: MqttIngest | None = None  # the devices' backlogs, a session of their own
    stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self.ingest.start()
        self.http.start()
        for subscriber in self._subscribers():
            subscriber.start()
        threading.Thread(target=self._alarm_loop, name="hub-alarms", daemon=True).start()

    def _alarm_loop(self) -> None:
        rules = alarm_rules(self.settings)
        while not self.stopping.wait(self.settings.alarm_check_s):
            try:
                now = dt.datetime.now(dt.UTC)
                if evaluate(self.store, rules, now):
                    notify_pending(self.store, self.notifiers, now)
            except Exception:
                log.exception("alarm pass failed; the next one tries again")

    def stop(self) -> None:
        """No more messages taken; what was received is stored and acknowledged; then the
        broker is left, the session ended (mqtt_ingest)."""
        self.stopping.set()
        self.http.stop()
        for subscriber in self._subscribers():
            subscriber.unsubscribe_and_drain()
        self.ingest.stop(timeout_s=20.0)
        for subscriber in self._subscribers():
            subscriber.stop()
        self.store.close()

    def _subscribers(self) -> list[MqttIngest]:
        return [s for s in (self.mqtt, self.backlog) if s is not None]


def build(settings: HubSettings) -> Hub:
    store = HubStore.open(
        settings.database_url, max_size=settings.pool_max_size, wait_s=settings.database_wait_s
    )
    ingest = Ingest(
        store,
        batch_size=settings.batch_size,
        batch_wait_s=settings.batch_wait_s,
        max_message_bytes=settings.max_message_bytes,
    )
    mqtt = backlog = None
    if settings.broker_host:
        subscriber = partial(
            MqttIngest,
            ingest,
            host=settings.broker_host,
            port=settings.broker_port,
            group=settings.share_group,
            username=settings.broker_username,
            password_file=settings.broker_secret_file,
            session_expiry_s=settings.session_expiry_s,
            receive_maximum=min(65535, 2 * settings.batch_size),
        )
        mqtt = subscriber(topic=settings.subscribe_topic, client_id=settings.client_id)
        if settings.backlog_topic:
            # Its own session: the broker queues a session's messages in one line, so live
            # ones on the same session would wait behind a backlog.
            backlog = subscriber(
                topic=settings.backlog_topic,
                client_id=f"{mqtt.client_id}-backlog",
                priority=BACKLOG,
            )
    notifiers: list[Notifier] = []
    if settings.alarm_webhook_url:
        notifiers.append(WebhookNotifier(settings.alarm_webhook_url))
    if settings.alarm_mqtt_topic and mqtt is not None:
        notifiers.append(MqttNotifier(settings.alarm_mqtt_topic, mqtt.publish))
    http = HubHttp(ingest, store, settings.http_host, settings.http_port)
    return Hub(settings, store, ingest, http, mqtt, notifiers, backlog)
