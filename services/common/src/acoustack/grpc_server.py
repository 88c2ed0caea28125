"""Running a gRPC server the same way in every service: health service, limits, graceful SIGTERM.

Every server started here decodes its requests inside our own code (``RequestGuard``): bytes that do
not parse are INVALID_ARGUMENT naming the message type, never grpcio's INTERNAL. A typed error that
escapes a servicer becomes its status code; any other exception is logged with its traceback and
becomes INTERNAL, never UNKNOWN with the exception's text. Details are bounded in size.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from acoustack.errors import AcoustackError, InvalidArgumentError, bounded

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> None:
    """``context.abort`` with details cut to a size every client can receive."""
    context.abort(code, bounded(details))


def rpc_errors(method: Callable) -> Callable:
    """Decorate a servicer method: typed errors become their status codes, anything else is logged
    and becomes INTERNAL, never UNKNOWN."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except AcoustackError as exc:
            abort(context, exc.grpc_code, str(exc))
        except Exception:
            if _aborted(context):
                raise
            log.exception("%s failed", method.__name__)
            abort(
                context,
                grpc.StatusCode.INTERNAL,
                f"{method.__name__}: internal error (see the service log)",
            )

    return wrapper


def _aborted(context: grpc.ServicerContext) -> bool:
    """Whether the handler already gave the call its status (``context.abort`` raises a bare
    Exception to unwind the handler, which must not be mistaken for a bug)."""
    return context.code() is not None


class UndecodableRequestError(InvalidArgumentError):
    pass


def _decoder(deserialize: Callable[[bytes], Any] | None, method: str) -> Callable[[bytes], Any]:
    message_type = getattr(getattr(deserialize, "__self__", None), "DESCRIPTOR", None)
    what = (
        f"a valid {message_type.full_name}"
        if message_type is not None
        else f"a valid request of {method}"
    )

    def decode(raw: bytes) -> Any:
        if deserialize is None:
            return raw
        try:
            return deserialize(raw)
        except Exception:  # DecodeError, or anything else the parser raises on hostile bytes
            raise UndecodableRequestError(f"request: the bytes are not {what}") from None

    return decode


def _settle(context: grpc.ServicerContext, exc: Exception, method: str) -> None:
    """Give an exception that escaped a handler its status: a typed error its code; anything else
    (a bug) INTERNAL, with the traceback in our log rather than in the client's hands."""
    if isinstance(exc, NotImplementedError) and context.code() is grpc.StatusCode.UNIMPLEMENTED:
        # A generated servicer base's method: what grpcio answers, without its logged traceback.
        abort(context, grpc.StatusCode.UNIMPLEMENTED, f"{method}: not implemented by this server")
    if _aborted(context):
        raise exc
    if isinstance(exc, AcoustackError):
        abort(context, exc.grpc_code, str(exc))
    log.error("%s failed", method, exc_info=exc)
    abort(context, grpc.StatusCode.INTERNAL, f"{method}: internal error (see the service log)")


def _guard_unary_request(behavior, decode, method):
    def handle(raw, context, *callback):
        try:
            return behavior(decode(raw), context, *callback)
        except Exception as exc:
            _settle(context, exc, method)

    return handle


def _guard_stream_request(behavior, decode, method):
    def handle(raw_iterator, context, *callback):
        try:
            return behavior(map(decode, raw_iterator), context, *callback)
        except Exception as exc:
            _settle(context, exc, method)

    return handle


def _guard_responses(handle, method):
    """For server streaming: errors raised while the responses are produced are settled too."""

    def stream(request, context, *callback):
        responses = handle(request, context, *callback)
        if responses is None:  # a non-blocking handler sends through the callback
            return None
        return _guarded_iterator(responses, context, method)

    return stream


def _guarded_iterator(responses, context, method):
    try:
        yield from responses
    except Exception as exc:
        _settle(context, exc, method)


class RequestGuard(grpc.ServerInterceptor):
    """Wraps every method handler so that requests are decoded inside our code (see the module's
    docstring). grpcio decodes before it calls a handler and answers INTERNAL when that fails, so
    the handler is given the raw bytes and decodes them itself."""

    def __init__(self) -> None:
        # Wrapped once per method: the interceptor is asked at every call.
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    def intercept_service(self, continuation, handler_call_details):
        wrapped = self._wrapped.get(handler_call_details.method)
        if wrapped is None:
            handler = continuation(handler_call_details)
            if handler is None:
                return None  # an unknown method: grpcio answers UNIMPLEMENTED
            wrapped = self._wrapped.setdefault(
                handler_call_details.method, self._wrap(handler, handler_call_details.method)
            )
        return wrapped

    @staticmethod
    def _wrap(handler: grpc.RpcMethodHandler, full_method: str) -> grpc.RpcMethodHandler:
        method = full_method.rsplit("/", 1)[-1]
        decode = _decoder(handler.request_deserializer, full_method)
        if handler.request_streaming and handler.response_streaming:
            behavior = _guard_responses(
                _guard_stream_request(handler.stream_stream, decode, method), method
            )
            make = grpc.stream_stream_rpc_method_handler
        elif handler.request_streaming:
            behavior = _guard_stream_request(handler.stream_unary, decode, method)
            make = grpc.stream_unary_rpc_method_handler
        elif handler.response_streaming:
            original = handler.unary_stream
            behavior = _guard_responses(_guard_unary_request(original, decode, method), method)
            # grpcio hands a non-blocking handler (the health service's Watch) a send callback.
            if getattr(original, "experimental_non_blocking", False):
                behavior.experimental_non_blocking = True
            make = grpc.unary_stream_rpc_method_handler
        else:
            behavior = _guard_unary_request(handler.unary_unary, decode, method)
            make = grpc.unary_unary_rpc_method_handler
        return make(
            behavior, request_deserializer=None, response_serializer=handler.response_serializer
        )


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
        interceptors=[RequestGuard()],
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
