"""Service configuration from environment variables, parsed once into a typed object.

The environment is wiring: addresses, credentials, ports, paths, devices and process counts. What
the device does (when and how to record, thresholds, where messages go, what is kept) is the
program's configuration (``acoustack.program_config``), which travels with each task; no setting
is declared in both.

A service declares a pydantic model and a prefix; ``load`` reads ``PREFIX_FIELD`` for each field
(or the shared name a field declares with ``env_field``) and fails fast with a ConfigError naming
every bad or missing variable and what it expected, and every variable that is no longer a
setting with what replaced it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from acoustack.errors import ConfigError

T = TypeVar("T", bound="Settings")


def env_field(name: str, description: str, **kwargs: Any) -> Any:
    """A field read from the shared variable ``name`` rather than PREFIX_FIELD: the same thing in
    every service that needs it (the temporary area, say) goes by one name."""
    return Field(description=description, json_schema_extra={"env": name}, **kwargs)


def program_field(dotted: str) -> str:
    """What a removed variable's error says: the program field that replaced it."""
    return (
        f"the program's {dotted} replaced it (acoustack config set --field {dotted} VALUE); it "
        "acts at the next run, with no restart"
    )


class Settings(BaseModel):
    """Base for service settings: frozen, unknown fields rejected, each field documented."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Variables that are no longer settings, with what replaced them (one line each). One that is
    # still set stops the service: it would otherwise be silently ignored.
    removed: ClassVar[dict[str, str]] = {}

    @classmethod
    def env_name(cls, prefix: str, field: str) -> str:
        extra = cls.model_fields[field].json_schema_extra if field in cls.model_fields else None
        if isinstance(extra, dict) and isinstance(extra.get("env"), str):
            return extra["env"]
        return f"{prefix}_{field}".upper()

    @classmethod
    def removed_variables(cls) -> dict[str, str]:
        found: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            found.update(getattr(klass, "removed", {}) or {})
        return found

    @classmethod
    def load(cls: type[T], prefix: str, environ: Mapping[str, str] | None = None) -> T:
        environ = os.environ if environ is None else environ
        problems = [
            f"{name}: no longer a setting; {replacement}; unset {name}"
            for name, replacement in cls.removed_variables().items()
            if environ.get(name, "") != ""
        ]
        values = {}
        for field in cls.model_fields:
            name = cls.env_name(prefix, field)
            if name in environ and environ[name] != "":
                values[field] = environ[name]
        try:
            settings = cls.model_validate(values)
        except ValidationError as exc:
            for item in exc.errors():
                field = str(item["loc"][0]) if item["loc"] else ""
                name = cls.env_name(prefix, field) if field else prefix
                info = cls.model_fields.get(field)
                hint = f" — {info.description}" if info is not None and info.description else ""
                got = f" (got {environ.get(name)!r})" if name in environ else " (not set)"
                problems.append(f"{name}: {item['msg']}{got}{hint}")
        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
        return settings


class BrokerSettings(Settings):
    """For services that use the Celery queues."""

    broker_url: Annotated[
        str,
        Field(pattern=r"^amqps?://", description="RabbitMQ URL, amqp://user:pass@host:5672/vhost"),
    ]


class StorageClientSettings(Settings):
    """For services that call the storage service."""

    storage_target: Annotated[
        str, Field(min_length=3, description="storage gRPC address, host:port")
    ] = "storage:50051"


# Task time limits are part of each task's contract (acoustack.names.TASK_TIME_LIMITS).
TIME_LIMITS_MOVED = "a task's time limits are part of its contract (acoustack.names)"


class MetricsSettings(Settings):
    """Every service's Prometheus exporter (acoustack.prometheus): one port each."""

    metrics_host: Annotated[
        str, Field(description="address the Prometheus exporter listens on")
    ] = "0.0.0.0"
    metrics_port: Annotated[
        int, Field(ge=0, le=65535, description="port of /metrics (Prometheus); 0: none")
    ] = 0
    metrics_dir: Annotated[
        Path | None,
        env_field(
            "PROMETHEUS_MULTIPROC_DIR",
            "where the service's worker processes keep their counts for /metrics (emptied at "
            "start; prometheus-client's multiprocess mode); unset: one process only",
        ),
    ] = None


class TemporaryAreaSettings(Settings):
    """For the services that write or empty the temporary area (recorder, storage): one name each,
    the same in both."""

    temp_dir: Annotated[
        Path,
        env_field(
            "ACOUSTACK_TEMP_DIR",
            "where new recordings wait to be detected and filed (RAM-backed spares an SD card)",
        ),
    ] = Path("/dev/shm/acoustack")
    temp_fallback_dir: Annotated[
        Path,
        env_field(
            "ACOUSTACK_TEMP_FALLBACK_DIR",
            "where they wait when the temporary area cannot be written (a disk folder)",
        ),
    ] = Path("/data/recordings/tmp")

    removed: ClassVar[dict[str, str]] = {
        "RECORDER_TEMP_DIR": "renamed ACOUSTACK_TEMP_DIR (one name in every service)",
        "STORAGE_TEMP_DIR": "renamed ACOUSTACK_TEMP_DIR (one name in every service)",
        "ACOUSTACK_TEMP_PATH": "renamed ACOUSTACK_TEMP_DIR (one name in every service)",
        "RECORDER_FALLBACK_TEMP_DIR": "renamed ACOUSTACK_TEMP_FALLBACK_DIR",
    }

    @property
    def temporary_areas(self) -> tuple[Path, ...]:
        """Where temporary recordings may be: the area, and its fallback when that differs."""
        return tuple(dict.fromkeys((self.temp_dir, self.temp_fallback_dir)))


def load_service_settings(cls: type[T], prefix: str, program: str) -> T:
    """Settings for a service's entry point: on a bad or missing variable, say which and exit 2.

    Logging is set up from the settings' log_level, the same way in every service.
    """
    try:
        settings = cls.load(prefix)
    except ConfigError as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    level = getattr(settings, "log_level", "INFO")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return settings
