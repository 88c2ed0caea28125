"""Finding a real Postgres and RabbitMQ for tests.

Order: the URL in the environment; else the server on 127.0.0.1 (the build machines run one); else a
container started with testcontainers when a Docker engine answers. When none is reachable the tests
fail with a message that says how to provide one; they are never skipped.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg

POSTGRES_ENV = "ACOUSTACK_TEST_POSTGRES_URL"
AMQP_ENV = "ACOUSTACK_TEST_AMQP_URL"
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_AMQP = "amqp://guest:guest@127.0.0.1:5672/"


class NoServerError(RuntimeError):
    pass


def _port_open(host: str, port: int, timeout_s: float = 1.0) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout_s):
        return True
    return False


def _docker_available() -> bool:
    try:
        import docker  # testcontainers' dependency

        docker.from_env().ping()
        return True
    except Exception:
        return False


def with_database(url: str, dbname: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{dbname}"))


@contextlib.contextmanager
def postgres_admin_url() -> Iterator[str]:
    """A URL of a Postgres server where the tests may create and drop databases."""
    url = os.environ.get(POSTGRES_ENV)
    if url:
        _check_postgres(url, f"{POSTGRES_ENV}={url}")
        yield url
        return
    if _port_open("127.0.0.1", 5432):
        _check_postgres(LOCAL_POSTGRES, "the local server on 127.0.0.1:5432")
        yield LOCAL_POSTGRES
        return
    if _docker_available():
        from testcontainers.postgres import PostgresContainer

        image = os.environ.get("ACOUSTACK_TEST_POSTGRES_IMAGE", "postgres:15")
        with PostgresContainer(image, driver=None) as container:
            yield container.get_connection_url()
        return
    raise NoServerError(
        "no Postgres for the tests: set ACOUSTACK_TEST_POSTGRES_URL to a server where the test user "
        "may create databases, or run Postgres on 127.0.0.1:5432 (user postgres, trust auth), or start "
        "a Docker engine so testcontainers can run one (scripts/ensure-docker.sh)"
    )


def _check_postgres(url: str, where: str) -> None:
    try:
        with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        raise NoServerError(f"Postgres from {where} does not answer: {exc}") from None


def create_database(admin_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        sql = f'CREATE DATABASE "{name}"'
        if template:
            sql += f' TEMPLATE "{template}"'
        conn.execute(sql)
    return with_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class RabbitVhost:
    url: str
    vhost: str


@contextlib.contextmanager
def rabbitmq_vhost() -> Iterator[RabbitVhost]:
    """A fresh vhost on a real RabbitMQ, deleted afterwards."""
    url = os.environ.get(AMQP_ENV)
    if url:
        # A given URL is used as is: its vhost belongs to whoever provided it.
        yield RabbitVhost(url, urllib.parse.unquote(urllib.parse.urlsplit(url).path[1:]) or "/")
        return
    vhost = unique_name("acoustack_test")
    if _port_open("127.0.0.1", 5672) and shutil.which("rabbitmqctl"):
        _rabbitmqctl("add_vhost", vhost)
        try:
            _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
            yield RabbitVhost(LOCAL_AMQP + vhost, vhost)
        finally:
            _rabbitmqctl("delete_vhost", vhost)
        return
    if _docker_available():
        from testcontainers.rabbitmq import RabbitMqContainer

        image = os.environ.get("ACOUSTACK_TEST_RABBITMQ_IMAGE", "rabbitmq:3-management")
        with RabbitMqContainer(image) as container:
            host, port = container.get_container_host_ip(), container.get_exposed_port(5672)
            yield RabbitVhost(f"amqp://guest:guest@{host}:{port}/", "/")
        return
    raise NoServerError(
        "no RabbitMQ for the tests: set ACOUSTACK_TEST_AMQP_URL (amqp://user:pass@host:port/vhost), "
        "or run RabbitMQ on 127.0.0.1:5672 with rabbitmqctl on PATH, or start a Docker engine so "
        "testcontainers can run one (scripts/ensure-docker.sh)"
    )


def _rabbitmqctl(*args: str) -> None:
    result = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise NoServerError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr.strip()}")


# Test ports come from below the kernel's ephemeral range (ip_local_port_range, 32768-60999 by
# default). A port that bind(0) hands out is free only until the socket closes: the next outgoing
# connection of any process can take it before the server under test binds it (seen in CI while a
# fuzz run opened thousands of connections). Ports in this range the kernel never picks by itself.
TEST_PORTS = range(20000, 32000)


def free_port() -> int:
    """A loopback TCP port free now, which no outgoing connection will take meanwhile."""
    for _ in range(200):
        port = random.choice(TEST_PORTS)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {TEST_PORTS.start}-{TEST_PORTS.stop - 1} after 200 tries")
