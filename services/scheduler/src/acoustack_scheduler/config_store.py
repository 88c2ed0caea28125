"""`config get` / `config set`: the program's configuration, read and changed by dotted field.

A change is validated against the program's schema (an error names the field), written to the file
atomically, and applied (the beat schedule is updated in place); queued work is not touched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from acoustack.errors import InvalidArgumentError, quote
from acoustack_scheduler.programs import Program, Section


def _walk(data: dict, path: list[str], field: str) -> tuple[dict, str]:
    node = data
    for i, key in enumerate(path[:-1]):
        if not isinstance(node.get(key), dict):
            known = ", ".join(sorted(k for k in node)) or "none"
            raise InvalidArgumentError(
                f"field: {quote('.'.join(path[: i + 1]))} is not a section (sections: {known})"
            )
        node = node[key]
    if path[-1] not in node:
        known = ", ".join(sorted(node))
        raise InvalidArgumentError(f"field: no field {quote(field)} (fields here: {known})")
    return node, path[-1]


def _parse_value(raw_value: str) -> Any:
    try:
        return json.loads(raw_value)
    except json.JSONDecodeError:
        return raw_value  # plain text, e.g. a time zone name
    except ValueError:  # JSON, but an integer longer than Python converts
        raise InvalidArgumentError("value: a number with too many digits") from None
    except RecursionError:
        raise InvalidArgumentError("value: nested too deeply to read") from None


class ConfigStore:
    def __init__(
        self,
        program: Program,
        path: Path,
        config: Section,
        on_change: Callable[[Section], None] = lambda c: None,
    ) -> None:
        self.program = program
        self.path = path
        self.config = config
        self.on_change = on_change

    def get(self, field: str = "") -> Any:
        data = self.config.model_dump(mode="json")
        if not field:
            return data
        node, key = _walk(data, field.split("."), field)
        return node[key]

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the program's configuration: types, limits, defaults, help."""
        return self.program.config_schema.model_json_schema()

    def set(self, field: str, raw_value: str) -> Any:
        self.set_many([(field, raw_value)])
        return self.get(field)

    def set_many(self, changes: list[tuple[str, str]]) -> dict[str, Any]:
        """Every change validated together, then applied at once (none when one is refused)."""
        if not changes:
            raise InvalidArgumentError("changes: give at least one field and its value")
        data = self.config.model_dump(mode="json")
        for field, raw_value in changes:
            if not field:
                raise InvalidArgumentError(
                    "field: give the dotted path of a setting, e.g. recording.duration_s"
                )
            value = _parse_value(raw_value)
            node, key = _walk(data, field.split("."), field)
            node[key] = value
        new_config = self.program.parse_config(data)  # names the field when the value is wrong
        self.program.beat_schedule(new_config)  # and refuses a schedule that cannot run
        self._write(new_config)
        self.config = new_config
        self.on_change(new_config)
        return self.get()

    def _write(self, config: Section) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.partial")
        with open(temp, "w") as handle:
            json.dump(config.model_dump(mode="json"), handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, self.path)
