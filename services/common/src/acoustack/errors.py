"""Typed errors shared by every service, each with the gRPC status it travels as.

Domain code raises these; the gRPC layer maps them to status codes (``grpc_code``) and the clients
map status codes back, so a caller catches the same class whether the store is in process or remote.
"""

from __future__ import annotations

import grpc

from acoustack.limits import pattern_problem


class AcoustackError(Exception):
    """Base class. ``help`` says what the user can do about it."""

    grpc_code = grpc.StatusCode.INTERNAL
    help = ""

    def __init__(self, message: str, *, help: str = "") -> None:
        super().__init__(message)
        if help:
            self.help = help

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} ({self.help})" if self.help else text


class InvalidArgumentError(AcoustackError, ValueError):
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class NotFoundError(AcoustackError, LookupError):
    grpc_code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(AcoustackError):
    grpc_code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDeniedError(AcoustackError):
    grpc_code = grpc.StatusCode.PERMISSION_DENIED


class FailedPreconditionError(AcoustackError):
    grpc_code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhaustedError(AcoustackError):
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class UnavailableError(AcoustackError):
    """A dependency (the database, the store) cannot be reached now; retrying later may work."""

    grpc_code = grpc.StatusCode.UNAVAILABLE


class FieldError(InvalidArgumentError):
    """One field's value is refused; ``field`` is its dotted path in the message that was checked,
    so a caller that checked a part of a request can say where the part sits (``under``)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem

    def under(self, root: str) -> FieldError:
        if not root:
            return self
        return FieldError(f"{root}.{self.field}" if self.field else root, self.problem)


class DataLossError(AcoustackError):
    """A stored record the read side refuses: ours to repair (see the storage service's log)."""

    grpc_code = grpc.StatusCode.DATA_LOSS


class ConfigError(AcoustackError):
    """A service's configuration is missing or malformed; the message names the variable."""


_BY_CODE: dict[grpc.StatusCode, type[AcoustackError]] = {
    cls.grpc_code: cls
    for cls in (
        InvalidArgumentError,
        NotFoundError,
        AlreadyExistsError,
        FailedPreconditionError,
        PermissionDeniedError,
        ResourceExhaustedError,
        UnavailableError,
        DataLossError,
    )
}


def from_rpc_error(error: grpc.RpcError, target: str) -> AcoustackError:
    """The typed error for a failed call, keeping the server's own words."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = (error.details() if hasattr(error, "details") else None) or str(error)
    cls = _BY_CODE.get(code, AcoustackError)
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return UnavailableError(f"{target} did not answer in time: {details}")
    return cls(details) if cls is not AcoustackError else cls(f"{target}: {code.name}: {details}")


# How much of a bad value an error message quotes, and the most an error's details may take: gRPC
# sends the details as a percent-encoded header, and a client drops headers past 8 KiB.
QUOTED_CHARS = 100
MAX_DETAILS_BYTES = 1500
_MAX_PROBLEMS = 10


def quote(value: str | bytes, limit: int = QUOTED_CHARS) -> str:
    """A value as an error message shows it: whole when short, else its start and its length."""
    unit = "bytes" if isinstance(value, bytes | bytearray) else "characters"
    if not isinstance(value, bytes | bytearray):
        value = str(value)
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value)} {unit})"


def bounded(details: str, limit_bytes: int = MAX_DETAILS_BYTES) -> str:
    """``details`` cut to at most ``limit_bytes`` of UTF-8, saying so, so the error can always
    reach the client (the last resort; messages should quote values with ``quote``)."""
    encoded = details.encode("utf-8", "backslashreplace")
    if len(encoded) <= limit_bytes:
        return details
    note = f"… (cut: {len(details)} characters in all)"
    head = encoded[: limit_bytes - len(note.encode())].decode("utf-8", "ignore")
    return head + note


def problem_of(item: dict) -> str:
    """One pydantic error's words, with the length of a string that is too long."""
    message = item.get("msg", "invalid")
    value = item.get("input")
    if item.get("type") == "string_too_long" and isinstance(value, str):
        message += f" (it has {len(value)})"
    if item.get("type") == "string_pattern_mismatch":
        found = pattern_problem((item.get("ctx") or {}).get("pattern", ""), value)
        if found is not None:
            return found
    return message


def validation_message(error: Exception, root: str) -> str:
    """One line per problem, each naming the field by its dotted path under ``root``; at most ten,
    then how many more there are."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return f"{root}: {error}"
    lines = []
    items = errors()
    for item in items[:_MAX_PROBLEMS]:
        path = ".".join(str(p) for p in (root, *item.get("loc", ())) if p != "")
        if not path and item.get("type") == "value_error":
            # A check across sections names its own fields ("file_management.keep_free_mb: …").
            lines.append(problem_of(item).removeprefix("Value error, "))
            continue
        lines.append(f"{path}: {problem_of(item)}")
    if len(items) > _MAX_PROBLEMS:
        lines.append(f"and {len(items) - _MAX_PROBLEMS} more problems")
    return "; ".join(lines)
