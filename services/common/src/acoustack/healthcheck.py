"""`python -m acoustack.healthcheck HOST:PORT [SERVICE]`: exit 0 when the server reports SERVING.

Used by container health checks, every few seconds in every container, so the command asks
`grpc.health.v1.Health/Check` over a plain socket with the standard library (``probe``): one
HTTP/2 request, no grpcio. grpcio's import alone is about 25 MB and a few hundred milliseconds of
CPU (seconds on a Pi 3), paid at each check. ``check`` asks the same with grpcio, for code that
has it loaded anyway.
"""

from __future__ import annotations

import socket
import struct
import sys
import time

STATUS_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
_PATH = "/grpc.health.v1.Health/Check"

# HTTP/2 (RFC 9113): the frames a unary call needs.
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _HEADERS, _RST_STREAM, _SETTINGS, _GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x7
_END_STREAM, _ACK, _END_HEADERS, _PADDED = 0x1, 0x1, 0x4, 0x8
_STREAM = 1


def check(target: str, service: str = "", timeout_s: float = 3.0) -> tuple[bool, str]:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.RpcError as exc:
            return False, f"{target}: {exc.code().name}: {exc.details()}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, f"{target}: {status}"


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", kind, flags, stream) + payload


def _hpack_int(value: int, prefix_bits: int = 7) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([value])
    out, value = bytearray([limit]), value - limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    return bytes([*out, value])


def _literal(name: str, value: str) -> bytes:
    """A header as an HPACK literal without indexing, new name, no Huffman coding."""
    name_b, value_b = name.encode(), value.encode()
    return b"\x00" + _hpack_int(len(name_b)) + name_b + _hpack_int(len(value_b)) + value_b


def _request(target: str, service: str) -> bytes:
    headers = b"".join(
        _literal(name, value)
        for name, value in (
            (":method", "POST"),
            (":scheme", "http"),
            (":path", _PATH),
            (":authority", target),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        )
    )
    name = service.encode()
    # HealthCheckRequest: field 1 (service), length-delimited; nothing for the whole server.
    message = b"\x0a" + _varint(len(name)) + name if name else b""
    body = b"\x00" + struct.pack(">I", len(message)) + message  # gRPC: not compressed, length
    return (
        _PREFACE
        + _frame(_SETTINGS, 0, 0)
        + _frame(_HEADERS, _END_HEADERS, _STREAM, headers)
        + _frame(_DATA, _END_STREAM, _STREAM, body)
    )


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    return bytes([*out, value])


def _status_of(data: bytes) -> int | None:
    """The ``status`` (field 1, a varint) of the HealthCheckResponse in a gRPC message."""
    if len(data) < 5 or data[0] != 0:
        return None
    message = data[5 : 5 + struct.unpack(">I", data[1:5])[0]]
    if not message:
        return 0  # every field at its default: UNKNOWN
    if message[0] != 0x08:
        return None
    status, shift = 0, 0
    for byte in message[1:]:
        status |= (byte & 0x7F) << shift
        if byte < 128:
            return status
        shift += 7
    return None


def probe(target: str, service: str = "", timeout_s: float = 3.0) -> tuple[bool, str]:
    """``check`` without grpcio: the Health/Check call over one HTTP/2 connection."""
    host, _, port = target.rpartition(":")
    if not (host and port.isdigit()):
        return False, f"{target}: not HOST:PORT"
    deadline = time.monotonic() + timeout_s
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s) as conn:
            conn.sendall(_request(target, service))
            buffer, data = b"", b""
            while True:
                while len(buffer) < 9 or len(buffer) < 9 + int.from_bytes(buffer[:3], "big"):
                    conn.settimeout(max(deadline - time.monotonic(), 0.001))
                    chunk = conn.recv(65536)
                    if not chunk:
                        return False, f"{target}: the server closed the connection"
                    buffer += chunk
                length = int.from_bytes(buffer[:3], "big")
                kind, flags = buffer[3], buffer[4]
                stream = int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
                payload, buffer = buffer[9 : 9 + length], buffer[9 + length :]
                if kind == _SETTINGS and not flags & _ACK:
                    conn.sendall(_frame(_SETTINGS, _ACK, 0))
                elif kind == _GOAWAY or (kind == _RST_STREAM and stream == _STREAM):
                    return False, f"{target}: the server refused the call"
                elif stream == _STREAM and kind in (_DATA, _HEADERS):
                    if kind == _DATA:
                        if flags & _PADDED:
                            payload = payload[1 : len(payload) - payload[0]]
                        data += payload
                    if flags & _END_STREAM:
                        break
    except (OSError, ValueError) as exc:  # refused, unreachable, timed out, a bad address
        return False, f"{target}: UNAVAILABLE: {exc}"
    status = _status_of(data)
    if status is None:
        # A call that failed ends with its status in the trailers alone (e.g. NOT_FOUND for a
        # service the server does not know).
        return False, f"{target}: no health status in the answer (the call failed)"
    return status == 1, f"{target}: {STATUS_NAMES.get(status, str(status))}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or len(args) > 2:
        print("usage: python -m acoustack.healthcheck HOST:PORT [SERVICE]", file=sys.stderr)
        return 2
    ok, text = probe(args[0], args[1] if len(args) > 1 else "")
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
