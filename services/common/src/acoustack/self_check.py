"""Self-checks: a service shows it can do its job now (proto/acoustack/v1/check.proto).

A service registers a function that takes the program's configuration (a dict; empty when the caller
has none) and returns one verdict per component. The scheduler asks every service through
``ask``; a service that does not implement SelfCheck (a researcher's model server, say) is judged
by its health service, so one missing method never blocks a deployment by itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from acoustack.errors import FieldError
from acoustack.grpc_server import rpc_errors
from acoustack.healthcheck import check as health_check
from acoustack.v1 import check_pb2, check_pb2_grpc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    component: str
    ok: bool
    detail: str

    def to_proto(self) -> check_pb2.CheckResult:
        return check_pb2.CheckResult(component=self.component, ok=self.ok, detail=self.detail)


CheckFn = Callable[[Mapping[str, Any]], list[CheckResult]]


def program_config(text: str) -> dict[str, Any]:
    """The program's configuration a caller sent: a JSON object, or empty for none."""
    if not text:
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:  # its words name a position, never the text itself
        raise FieldError("program_config_json", f"not valid JSON: {exc}") from None
    except ValueError:  # JSON, but an integer longer than Python converts
        raise FieldError("program_config_json", "holds a number with too many digits") from None
    except RecursionError:
        raise FieldError("program_config_json", "nested too deeply to read") from None
    if not isinstance(config, dict):
        raise FieldError(
            "program_config_json", f"must be a JSON object, not {type(config).__name__}"
        )
    return config


class SelfCheckServicer(check_pb2_grpc.SelfCheckServicer):
    def __init__(self, run: CheckFn) -> None:
        self.run = run

    @rpc_errors
    def Check(self, request, context):
        config = program_config(request.program_config_json)
        try:
            results = self.run(config)
        except Exception as exc:  # a check that crashes is a failed check, said plainly
            log.exception("self-check failed")
            results = [CheckResult("self-check", False, f"{type(exc).__name__}: {exc}")]
        return check_pb2.CheckResponse(results=[r.to_proto() for r in results])


def register(run: CheckFn) -> Callable[[grpc.Server], str]:
    """For ``acoustack.grpc_server.start_server``: serve SelfCheck with ``run``."""

    def add(server: grpc.Server) -> str:
        check_pb2_grpc.add_SelfCheckServicer_to_server(SelfCheckServicer(run), server)
        return check_pb2.DESCRIPTOR.services_by_name["SelfCheck"].full_name

    return add


def ask(
    service: str,
    target: str,
    program_config: Mapping[str, Any] | None = None,
    *,
    timeout_s: float = 30.0,
) -> list[CheckResult]:
    """Run ``service``'s self-check at ``target``; its health alone when it has none.

    Each verdict's component is prefixed with the service ("recorder: test recording").
    """
    request = check_pb2.CheckRequest(program_config_json=json.dumps(dict(program_config or {})))
    with grpc.insecure_channel(target) as channel:
        try:
            reply = check_pb2_grpc.SelfCheckStub(channel).Check(request, timeout=timeout_s)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                return [
                    CheckResult(service, False, f"{target}: {exc.code().name}: {exc.details()}")
                ]
        else:
            return [
                CheckResult(f"{service}: {r.component}", r.ok, r.detail) for r in reply.results
            ] or [CheckResult(service, True, "nothing to check")]
    ok, text = health_check(target, timeout_s=min(timeout_s, 5.0))
    return [CheckResult(service, ok, f"{text} (health only: no self-check)")]
