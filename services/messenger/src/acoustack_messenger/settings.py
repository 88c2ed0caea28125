"""Messenger settings, read once from MESSENGER_* environment variables.

Where messages go (MQTT broker, HTTP endpoint) is not here: it is the program's `messaging`
section, sent with every task, so `acoustack config set` changes it without a restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from acoustack.config import (
    TIME_LIMITS_MOVED,
    BrokerSettings,
    MetricsSettings,
    StorageClientSettings,
)

PREFIX = "MESSENGER"


class MessengerSettings(BrokerSettings, StorageClientSettings, MetricsSettings):
    grpc_host: Annotated[
        str, Field(description="address the SelfCheck and health services listen on")
    ] = "0.0.0.0"
    grpc_port: Annotated[
        int, Field(ge=0, le=65535, description="port of the SelfCheck and health services")
    ] = 50055
    data_dir: Annotated[
        Path,
        Field(description="persistent data volume: the device id learned, the disk in heartbeats"),
    ] = Path("/data")
    secrets_dir: Annotated[
        Path,
        Field(
            description="where the secrets the program's messaging section names are files "
            "(compose secrets, a k3s Secret volume)"
        ),
    ] = Path("/run/secrets")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    removed: ClassVar[dict[str, str]] = {
        "MESSENGER_TASK_SOFT_TIME_LIMIT_S": TIME_LIMITS_MOVED,
        "MESSENGER_TASK_TIME_LIMIT_S": TIME_LIMITS_MOVED,
        "MESSENGER_SHUTDOWN_GRACE_S": "on SIGTERM the task in progress finishes (Celery's warm "
        "shutdown) within the container's own stop grace (compose stop_grace_period, k3s "
        "terminationGracePeriodSeconds)",
    }
