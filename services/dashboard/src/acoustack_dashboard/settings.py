"""Dashboard settings, read once from DASHBOARD_* environment variables: wiring and the login's
secret only. It opens no database: storage and the scheduler answer over gRPC."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from acoustack.config import StorageClientSettings

PREFIX = "DASHBOARD"


class DashboardSettings(StorageClientSettings):
    control_target: Annotated[
        str, Field(min_length=3, description="the scheduler's Control API, host:port")
    ] = "scheduler:50054"
    broker_url: Annotated[
        str,
        Field(
            pattern=r"^(amqps?://.*)?$",
            description="RabbitMQ URL, amqp://user:pass@host:5672/vhost, for the live feed "
            "(storage's and the scheduler's events); empty: pages update on reload only",
        ),
    ] = ""
    recordings_root: Annotated[
        Path,
        Field(description="the recordings volume, mounted read-only; no file outside it is read"),
    ] = Path("/recordings")
    data_dir: Annotated[
        Path, Field(description="the dashboard's own volume: the generated password, the cache")
    ] = Path("/data")
    password: Annotated[
        str,
        Field(
            description="the login password; empty: one is generated at the first start, "
            "printed once in the log and kept in DASHBOARD_DATA_DIR/password"
        ),
    ] = ""
    public_pages: Annotated[
        bool,
        Field(
            description="show the read-only pages without a login (every change still needs one)"
        ),
    ] = False
    http_host: Annotated[
        str, Field(min_length=1, description="address the web server listens on")
    ] = "0.0.0.0"
    http_port: Annotated[
        int, Field(ge=0, le=65535, description="web port (0 takes a free one)")
    ] = 8080
    hub_url: Annotated[
        str,
        Field(
            pattern=r"^(https?://.*)?$",
            description="the fleet hub's HTTP API, e.g. http://hub.hub.svc.cluster.local:8090; "
            "set: hub mode, the fleet pages at /fleet; empty: none",
        ),
    ] = ""
    spectrogram_cache_mb: Annotated[
        int, Field(ge=0, le=10_000, description="disk kept for rendered spectrograms (0: none)")
    ] = 200
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
