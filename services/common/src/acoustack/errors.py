"""Typed errors shared by every service, each with the gRPC status it travels as.

Domain code raises these; the gRPC layer maps them to status codes (``grpc_code``) and the clients
map status codes back, so a caller catches the same class whether the store is in process or remote.
"""

from __future__ import annotations

import grpc


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


class FailedPreconditionError(AcoustackError):
    grpc_code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhaustedError(AcoustackError):
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class UnavailableError(AcoustackError):
    """A dependency (the database, the store) cannot be reached now; retrying later may work."""

    grpc_code = grpc.StatusCode.UNAVAILABLE


class ConfigError(AcoustackError):
    """A service's configuration is missing or malformed; the message names the variable."""


_BY_CODE: dict[grpc.StatusCode, type[AcoustackError]] = {
    cls.grpc_code: cls
    for cls in (
        InvalidArgumentError,
        NotFoundError,
        AlreadyExistsError,
        FailedPreconditionError,
        ResourceExhaustedError,
        UnavailableError,
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


def validation_message(error: Exception, root: str) -> str:
    """One line per problem, each naming the field by its dotted path under ``root``."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return f"{root}: {error}"
    lines = []
    for item in errors():
        path = ".".join(str(p) for p in (root, *item.get("loc", ())) if p != "")
        lines.append(f"{path}: {item.get('msg', 'invalid')}")
    return "; ".join(lines)
