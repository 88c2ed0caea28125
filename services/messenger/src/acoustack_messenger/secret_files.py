"""The passwords the messenger uses, read from files in its secrets directory (compose secrets
and k3s Secret volumes both give files there), so none lives in the program configuration, the
environment of every process, or a log."""

from __future__ import annotations

from pathlib import Path

from acoustack.errors import InvalidArgumentError

WHERE_IT_COMES_FROM = (
    "compose: MQTT_PASSWORD in compose/secrets.env, made by make up; k3s: the "
    "acoustack-credentials Secret"
)


def read_secret(directory: Path, name: str, field: str) -> str:
    """The secret ``name`` (one line; a trailing line break is dropped). An error names the
    program field that asked for it, never the value."""
    path = Path(directory) / name
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except FileNotFoundError:
        raise InvalidArgumentError(
            f"{field}: no secret {name!r} in {directory} ({WHERE_IT_COMES_FROM}); or empty "
            f"{field} for no password"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InvalidArgumentError(f"{field}: the secret {path} cannot be read: {reason}") from None
