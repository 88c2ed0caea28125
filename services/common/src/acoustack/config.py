"""Service configuration from environment variables, parsed once into a typed object.

A service declares a pydantic model and a prefix; ``load`` reads ``PREFIX_FIELD`` for each field and
fails fast with a ConfigError naming every bad or missing variable and what it expected.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

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
