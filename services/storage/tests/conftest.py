from __future__ import annotations

import urllib.parse
from collections.abc import Iterator

import pytest

from acoustack.clients import RetryPolicy, StoreClient
from acoustack.grpc_server import RunningServer, start_server
from acoustack.testing.proxy import TcpProxy
from acoustack_storage.repository import PostgresStore
from acoustack_storage.servicer import StoreServicer, register


@pytest.fixture
def store(database_url: str) -> Iterator[PostgresStore]:
    s = PostgresStore.open(database_url, timeout_s=2.0)
    yield s
    s.close()


@pytest.fixture
def storage_server(store: PostgresStore) -> Iterator[RunningServer]:
    """The real servicer on a loopback port, in this process."""
    running = start_server([register(StoreServicer(store))], address="127.0.0.1:0")
    yield running
    running.stop(0)


@pytest.fixture
def client(storage_server: RunningServer) -> Iterator[StoreClient]:
    with StoreClient(
        f"127.0.0.1:{storage_server.port}", retry=RetryPolicy(budget_s=1.0), call_timeout_s=10
    ) as c:
        yield c


@pytest.fixture
def deployment(client: StoreClient):
    return client.start_deployment("meadow", 52.2, 0.12)


@pytest.fixture
def proxied_database(database_url):
    """The test database reached through a proxy the test can cut."""
    parts = urllib.parse.urlsplit(database_url)
    proxy = TcpProxy(parts.hostname, parts.port or 5432)
    netloc = f"{parts.username or 'postgres'}@127.0.0.1:{proxy.port}"
    yield proxy, urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    proxy.close()
