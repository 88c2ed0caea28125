"""Scheduler settings, read once from SCHEDULER_* environment variables: wiring only. The
program's behaviour is its configuration file (SCHEDULER_CONFIG_FILE), changed with
`acoustack config set`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator

from acoustack.config import BrokerSettings, MetricsSettings, StorageClientSettings, program_field

PREFIX = "SCHEDULER"


def parse_services(text: str) -> dict[str, str]:
    """'storage=storage:50051,recorder=recorder:50053' → {'storage': 'storage:50051', ...}."""
    services = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, target = part.partition("=")
        if not sep or not name or ":" not in target:
            raise ValueError(f"{part!r} is not NAME=HOST:PORT")
        services[name.strip()] = target.strip()
    return services


class SchedulerSettings(BrokerSettings, StorageClientSettings, MetricsSettings):
    program: Annotated[
        str, Field(description="default, connected, detection, or package.module:ProgramClass")
    ] = "detection"
    config_file: Annotated[
        Path, Field(description="the program's configuration (JSON); missing: the defaults")
    ] = Path("/data/program.json")
    services: Annotated[
        str,
        Field(
            description="health endpoints to report and check, NAME=HOST:PORT,... (storage is added)"
        ),
    ] = ""
    grpc_host: Annotated[str, Field(description="address the Control API listens on")] = "0.0.0.0"
    grpc_port: Annotated[int, Field(ge=0, le=65535, description="Control API port")] = 50054
    disk_path: Annotated[Path, Field(description="file system whose free space status reports")] = (
        Path("/data")
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    removed: ClassVar[dict[str, str]] = {
        "SCHEDULER_DETECTION_SWEEP_AFTER_S": program_field("detection.resend_after_s"),
        "SCHEDULER_DETECTION_SWEEP_ATTEMPTS": program_field("detection.resend_attempts"),
    }

    @field_validator("services")
    @classmethod
    def _services(cls, value: str) -> str:
        parse_services(value)
        return value
