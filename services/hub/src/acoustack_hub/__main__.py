"""Entry point: `python -m acoustack_hub`. Ingests what the fleet's devices send (MQTT shared
subscription, HTTP POST) into the central Postgres, keeps the device registry and the alarms,
and serves the fleet as JSON; SIGTERM stores what was received, then stops."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from acoustack import prometheus
from acoustack.config import load_service_settings
from acoustack_hub.settings import PREFIX, HubSettings
from acoustack_hub.wiring import build

log = logging.getLogger("acoustack_hub")


def main() -> int:
    settings = load_service_settings(HubSettings, PREFIX, "acoustack-hub")
    if settings.alarm_mqtt_topic and not settings.broker_host:
        print(
            f"acoustack-hub: {PREFIX}_ALARM_MQTT_TOPIC needs {PREFIX}_MQTT_HOST (the alarms are "
            "published on the hub's broker)",
            file=sys.stderr,
        )
        return 2
    if settings.broker_secret_file is not None and not settings.broker_secret_file.is_file():
        print(
            f"acoustack-hub: {PREFIX}_MQTT_PASSWORD_FILE: no file {settings.broker_secret_file}",
            file=sys.stderr,
        )
        return 2
    prometheus.prepare_metrics_dir(settings.metrics_dir)
    prometheus.start_exporter(
        settings.metrics_port, settings.metrics_host, metrics_dir=settings.metrics_dir
    )
    try:
        hub = build(settings)
    except RuntimeError as exc:
        print(f"acoustack-hub: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    hub.start()
    log.info(
        "hub up: HTTP on %s:%d, MQTT %s", settings.http_host, hub.http.port,
        hub.mqtt.subscription if hub.mqtt else "off",
    )  # fmt: skip
    stop.wait()
    log.info("stopping: storing what was received")
    hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
