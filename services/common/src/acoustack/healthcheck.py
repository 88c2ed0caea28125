"""gRPC health, asked with grpcio: ``check`` for code that has grpcio loaded anyway (self-checks,
`acoustack status`), and `python -m acoustack.healthcheck HOST:PORT [SERVICE]` by hand.

The containers' own health check is `acoustack-grpc-health` (services/common/scripts), the same
question in bash: it runs every few seconds in every container, and a Python start there would
cost more CPU than everything else the check does.
"""

from __future__ import annotations

import sys


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


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or len(args) > 2:
        print("usage: python -m acoustack.healthcheck HOST:PORT [SERVICE]", file=sys.stderr)
        return 2
    ok, text = check(args[0], args[1] if len(args) > 1 else "")
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
