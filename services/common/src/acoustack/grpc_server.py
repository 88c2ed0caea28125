"""Running a gRPC server the same way in every service: health service, limits, graceful SIGTERM."""

from __future__ import annotations

import functools
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from acoustack.errors import AcoustackError

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def rpc_errors(method: Callable) -> Callable:
    """Decorate a servicer method: typed errors become their status codes, anything else is logged
    and becomes INTERNAL, never UNKNOWN."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except AcoustackError as exc:
            context.abort(exc.grpc_code, str(exc))
        except Exception:
            log.exception("%s failed", method.__name__)
            context.abort(
                grpc.StatusCode.INTERNAL, f"{method.__name__}: internal error (see the service log)"
            )

    return wrapper


@dataclass
class RunningServer:
    server: grpc.Server
    health: health.HealthServicer
    port: int
    service_names: tuple[str, ...]

    def set_serving(self, serving: bool) -> None:
        status = SERVING if serving else NOT_SERVING
        self.health.set("", status)
        for name in self.service_names:
            self.health.set(name, status)

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop taking new calls, let the ones in flight finish (up to grace_s), then stop."""
        self.set_serving(False)
        self.server.stop(grace_s).wait(grace_s + 1)


def start_server(
    register: Iterable[Callable[[grpc.Server], str]],
    *,
    address: str,
    max_workers: int = 8,
    max_message_bytes: int = 64 * 1024 * 1024,
) -> RunningServer:
    """Start a server with the given servicers and the standard health service.

    Each item of ``register`` adds one servicer to the server and returns its full service name.
    ``address`` may end in ``:0`` to take a free port; the port taken is in the result.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ],
    )
    names = tuple(add(server) for add in register)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}: is the port taken?")
    server.start()
    running = RunningServer(server, health_servicer, port, names)
    running.set_serving(True)
    return running


def wait_for_termination(running: RunningServer, grace_s: float = 10.0) -> None:
    """Block until SIGTERM or SIGINT, then stop gracefully (what compose and k8s send)."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s: draining for up to %.0f s", signal.Signals(signum).name, grace_s)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    running.stop(grace_s)
    log.info("stopped")
