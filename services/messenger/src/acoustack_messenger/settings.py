"""Messenger settings, read once from MESSENGER_* environment variables.

Where messages go (MQTT broker, HTTP endpoint) is not here: it is the program's `messaging`
section, sent with every task, so `acoustack config set` changes it without a restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from acoustack.config import BrokerSettings, StorageClientSettings, TaskTimeLimitSettings

PREFIX = "MESSENGER"


class MessengerSettings(BrokerSettings, StorageClientSettings, TaskTimeLimitSettings):
    grpc_host: Annotated[
        str, Field(description="address the SelfCheck and health services listen on")
    ] = "0.0.0.0"
    grpc_port: Annotated[
        int, Field(ge=0, le=65535, description="port of the SelfCheck and health services")
    ] = 50055
    data_dir: Annotated[
        Path, Field(description="persistent data volume: the device id, and the disk in heartbeats")
    ] = Path("/data")
    shutdown_grace_s: Annotated[
        float, Field(gt=0, description="time the task in progress is given on SIGTERM")
    ] = 60.0
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
