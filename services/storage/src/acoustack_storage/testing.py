"""Storage's pytest fixtures, for every test that needs a store: a database with storage's schema
per test (copied from a template migrated once), and a real storage service on a loopback port.

Enabled with ``pytest_plugins`` (the repository's conftest does).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from acoustack.grpc_server import start_server
from acoustack.testing import servers
from acoustack_storage.migrate import apply_migrations
from acoustack_storage.repository import PostgresStore
from acoustack_storage.servicer import StoreServicer, register


@pytest.fixture(scope="session")
def postgres_template(postgres_admin_url: str) -> Iterator[str]:
    """A database with the storage schema applied once; each test's database is copied from it."""
    import psycopg

    name = servers.unique_name("acoustack_tpl")
    url = servers.create_database(postgres_admin_url, name)
    try:
        with psycopg.connect(url) as conn:
            apply_migrations(conn)
        yield name
    finally:
        servers.drop_database(postgres_admin_url, name)


@pytest.fixture
def database_url(postgres_admin_url: str, postgres_template: str) -> Iterator[str]:
    """A new database with the storage schema, dropped after the test."""
    name = servers.unique_name("acoustack_test")
    url = servers.create_database(postgres_admin_url, name, template=postgres_template)
    yield url
    servers.drop_database(postgres_admin_url, name)


@pytest.fixture
def storage_target(database_url: str) -> Iterator[str]:
    """A real storage service (in this process) on a loopback port, over this test's database."""
    store = PostgresStore.open(database_url, timeout_s=2.0)
    running = start_server([register(StoreServicer(store))], address="127.0.0.1:0")
    yield f"127.0.0.1:{running.port}"
    running.stop(0)
    store.close()
