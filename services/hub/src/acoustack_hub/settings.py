"""Hub settings, read once from HUB_* environment variables.

The hub is not a device: it has no program configuration. Everything here is wiring (where its
database and broker are, what it listens on) and the fleet's alarm rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from acoustack.config import MetricsSettings

PREFIX = "HUB"


class HubSettings(MetricsSettings):
    database_url: Annotated[
        str,
        Field(
            pattern=r"^postgres(ql)?://",
            description="the central Postgres, postgresql://hub:secret@postgres:5432/hub",
        ),
    ]
    database_wait_s: Annotated[
        float, Field(ge=0, description="how long to wait for the database at start")
    ] = 60.0
    broker_host: Annotated[
        str, Field(description="the central MQTT broker the devices publish to; empty: HTTP only")
    ] = ""
    broker_port: Annotated[int, Field(ge=1, le=65535, description="the broker's port")] = 1883
    subscribe_topic: Annotated[
        str,
        Field(
            min_length=1,
            description="what the devices publish to (their messaging.mqtt_topic; wildcards "
            "allowed, e.g. fleet/+/messages)",
        ),
    ] = "acoustack/messages"
    backlog_topic: Annotated[
        str,
        Field(
            description="what the devices publish their backlogs to (their "
            "messaging.mqtt_backlog_topic), taken on a session of its own after live traffic; "
            "empty: none",
        ),
    ] = ""
    share_group: Annotated[
        str,
        Field(
            pattern=r"^[A-Za-z0-9_-]{1,64}$",
            description="the MQTT v5 shared subscription's group: replicas in one group split "
            "the messages ($share/<group>/<topic>)",
        ),
    ] = "hub"
    client_id: Annotated[
        str,
        Field(
            max_length=128,
            description="this replica's client id, stable across restarts so the broker hands "
            "it back the messages it had not acknowledged (k3s: the pod's name); empty: the "
            "host name",
        ),
    ] = ""
    broker_username: Annotated[str, Field(description="the broker's user; empty: anonymous")] = ""
    broker_secret_file: Annotated[
        Path | None,
        Field(description="a file holding the broker user's password (a secret volume)"),
    ] = None
    session_expiry_s: Annotated[
        int,
        Field(
            ge=0,
            le=7 * 86400,
            description="how long the broker keeps this replica's session (and the messages it "
            "had not acknowledged) while it is away",
        ),
    ] = 3600
    http_host: Annotated[str, Field(description="address the HTTP API listens on")] = "0.0.0.0"
    http_port: Annotated[
        int, Field(ge=0, le=65535, description="port of the HTTP API (0 takes a free one)")
    ] = 8090
    batch_size: Annotated[
        int, Field(ge=1, le=10000, description="most messages stored in one transaction")
    ] = 500
    batch_wait_s: Annotated[
        float,
        Field(
            gt=0,
            le=5,
            description="how long a batch waits for more messages once it has one (a longer "
            "wait makes bigger batches, and later acknowledgements)",
        ),
    ] = 0.005
    max_message_bytes: Annotated[
        int,
        Field(
            ge=1024,
            le=64 * 1024 * 1024,
            description="a bigger message is stored as rejected (its first KiB kept)",
        ),
    ] = 256 * 1024
    pool_max_size: Annotated[int, Field(ge=2, le=100, description="most database connections")] = 8
    heartbeat_interval_s: Annotated[
        float,
        Field(gt=0, description="the devices' heartbeat interval (their heartbeat.interval_s)"),
    ] = 60.0
    silent_intervals: Annotated[
        int,
        Field(ge=1, le=1000, description="a device silent this many heartbeat intervals alarms"),
    ] = 3
    detections_stopped_s: Annotated[
        float,
        Field(
            gt=0,
            description="a device that detected before, and has recorded but not detected for "
            "this long, alarms",
        ),
    ] = 6 * 3600.0
    recording_fresh_s: Annotated[
        float,
        Field(
            gt=0,
            description="recordings go on while the heartbeat's last_recording_age is below this",
        ),
    ] = 600.0
    alarm_check_s: Annotated[
        float, Field(gt=0, description="how often the alarm rules are evaluated")
    ] = 30.0
    alarm_webhook_url: Annotated[
        str,
        Field(
            pattern=r"^(https?://.*)?$",
            description="each alarm (opened, closed) is POSTed here as JSON; empty: none",
        ),
    ] = ""
    alarm_mqtt_topic: Annotated[
        str,
        Field(description="each alarm is published here on the hub's broker; empty: none"),
    ] = ""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
