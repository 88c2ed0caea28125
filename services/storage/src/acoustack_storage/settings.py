"""Storage settings, read once from STORAGE_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from acoustack.config import TIME_LIMITS_MOVED, MetricsSettings, TemporaryAreaSettings

PREFIX = "STORAGE"


class StorageSettings(TemporaryAreaSettings, MetricsSettings):
    database_url: Annotated[
        str,
        Field(
            pattern=r"^postgres(ql)?://",
            description="Postgres URL, e.g. postgresql://acoustack:secret@postgres:5432/acoustack",
        ),
    ]
    grpc_host: Annotated[str, Field(min_length=1, description="address to listen on")] = "0.0.0.0"
    grpc_port: Annotated[
        int, Field(ge=0, le=65535, description="gRPC port (0 takes a free one)")
    ] = 50051
    pool_min_size: Annotated[
        int, Field(ge=1, le=100, description="database connections kept open")
    ] = 1
    pool_max_size: Annotated[int, Field(ge=1, le=100, description="most database connections")] = 8
    grpc_workers: Annotated[int, Field(ge=1, le=256, description="threads serving requests")] = 8
    max_message_mb: Annotated[
        int, Field(ge=1, le=1024, description="largest gRPC message accepted or sent, in MiB")
    ] = 64
    database_wait_s: Annotated[
        float,
        Field(ge=0, description="how long to wait for the database at start before giving up"),
    ] = 60.0
    health_interval_s: Annotated[
        float, Field(gt=0, description="how often the database is checked for the health service")
    ] = 5.0
    shutdown_grace_s: Annotated[
        float, Field(ge=0, description="time given to calls in flight on SIGTERM")
    ] = 10.0
    broker_url: Annotated[
        str,
        Field(
            pattern=r"^(amqps?://.*)?$",
            description="RabbitMQ URL (amqp://user:pass@host:5672/vhost) for the file-management "
            "worker and the domain events (acoustack.events); empty: neither, gRPC only",
        ),
    ] = ""
    data_dir: Annotated[
        Path, Field(description="storage's own volume: the copy of the device id")
    ] = Path("/data")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    removed: ClassVar[dict[str, str]] = {
        "STORAGE_TASK_SOFT_TIME_LIMIT_S": TIME_LIMITS_MOVED,
        "STORAGE_TASK_TIME_LIMIT_S": TIME_LIMITS_MOVED,
    }
