"""What the benchmarks share: a scratch database, and acoustack services run as real processes.

Everything runs on this machine: the local Postgres (BENCH_POSTGRES_URL to use another) and
services on free loopback ports, stopped with SIGTERM when the benchmark ends.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator

import psycopg

from acoustack.healthcheck import check
from acoustack.testing.servers import free_port

POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SERVICE_START_TIMEOUT_S = 60.0
SERVICE_STOP_TIMEOUT_S = 20.0
HEALTH_POLL_INTERVAL_S = 0.2


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def scratch_database(prefix: str = "bench") -> Iterator[str]:
    """A new, empty database on the local server, dropped afterwards; yields its URL."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        parts = urllib.parse.urlsplit(POSTGRES_ADMIN_URL)
        yield urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_until_serving(target: str, service: subprocess.Popen, name: str) -> None:
    deadline = time.monotonic() + SERVICE_START_TIMEOUT_S
    status = "no answer yet"
    while time.monotonic() < deadline:
        if service.poll() is not None:
            raise RuntimeError(
                f"{name} exited with code {service.returncode} before serving (log above)"
            )
        serving, status = check(target, timeout_s=1.0)
        if serving:
            return
        time.sleep(HEALTH_POLL_INTERVAL_S)
    raise RuntimeError(f"{name} was not SERVING within {SERVICE_START_TIMEOUT_S:.0f} s: {status}")


@contextlib.contextmanager
def service_process(
    module: str, env: dict[str, str], health_port: int
) -> Iterator[subprocess.Popen]:
    """`python -m MODULE` with ``env``, once its health service says SERVING; SIGTERM at the end.

    Its output goes to our stderr: stdout carries only the benchmark's result lines.
    """
    service = subprocess.Popen(
        [sys.executable, "-m", module],
        env={**os.environ, **env},
        stdout=sys.stderr,
        stderr=sys.stderr,
    )
    try:
        wait_until_serving(f"127.0.0.1:{health_port}", service, module)
        yield service
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(timeout=SERVICE_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log(f"{module} ignored SIGTERM for {SERVICE_STOP_TIMEOUT_S:.0f} s; killing it")
            service.kill()
            service.wait()


@contextlib.contextmanager
def storage_service(database_url: str) -> Iterator[str]:
    """The storage service on a free local port; yields its target."""
    port = free_port()
    env = {
        "STORAGE_DATABASE_URL": database_url,
        "STORAGE_GRPC_HOST": "127.0.0.1",
        "STORAGE_GRPC_PORT": str(port),
        "STORAGE_LOG_LEVEL": "WARNING",
    }
    with tempfile.TemporaryDirectory(prefix="acoustack-storage-data-") as data_dir:
        env["STORAGE_DATA_DIR"] = data_dir
        with service_process("acoustack_storage", env, port):
            yield f"127.0.0.1:{port}"
