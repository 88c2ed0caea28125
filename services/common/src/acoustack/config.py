"""Service configuration from environment variables, parsed once into a typed object.

A service declares a pydantic model and a prefix; ``load`` reads ``PREFIX_FIELD`` for each field and
fails fast with a ConfigError naming every bad or missing variable and what it expected.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from acoustack.errors import ConfigError

T = TypeVar("T", bound="Settings")


class Settings(BaseModel):
    """Base for service settings: frozen, unknown fields rejected, each field documented."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def env_name(cls, prefix: str, field: str) -> str:
        return f"{prefix}_{field}".upper()

    @classmethod
    def load(cls: type[T], prefix: str, environ: Mapping[str, str] | None = None) -> T:
        environ = os.environ if environ is None else environ
        values = {}
        for field in cls.model_fields:
            name = cls.env_name(prefix, field)
            if name in environ and environ[name] != "":
                values[field] = environ[name]
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = []
            for item in exc.errors():
                field = str(item["loc"][0]) if item["loc"] else ""
                name = cls.env_name(prefix, field) if field else prefix
                info = cls.model_fields.get(field)
                hint = f" — {info.description}" if info is not None and info.description else ""
                got = f" (got {environ.get(name)!r})" if name in environ else " (not set)"
                problems.append(f"{name}: {item['msg']}{got}{hint}")
            raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


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


class TaskTimeLimitSettings(Settings):
    """For services whose worker enforces time limits (prefork pool): soft, then hard."""

    task_soft_time_limit_s: Annotated[
        float, Field(gt=0, description="a task running longer is asked to stop (it can clean up)")
    ] = 600.0
    task_time_limit_s: Annotated[
        float, Field(gt=0, description="a task running longer is killed (more than the soft limit)")
    ] = 660.0

    @field_validator("task_time_limit_s")
    @classmethod
    def _hard_after_soft(cls, value: float, info: ValidationInfo) -> float:
        soft = info.data.get("task_soft_time_limit_s")
        if soft is not None and value <= soft:
            raise ValueError(f"must be greater than the soft limit ({soft:g} s)")
        return value


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
