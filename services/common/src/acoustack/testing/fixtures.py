"""pytest fixtures: a real Postgres database per test, a real RabbitMQ vhost per run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from acoustack.testing import servers


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    try:
        with servers.postgres_admin_url() as url:
            yield url
    except servers.NoServerError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def postgres_template(postgres_admin_url: str) -> Iterator[str]:
    """A database with the storage schema applied once; each test's database is copied from it."""
    import psycopg

    from acoustack_storage.migrate import apply_migrations

    name = servers.unique_name("acoustack_tpl")
    url = servers.create_database(postgres_admin_url, name)
    try:
        with psycopg.connect(url) as conn:
            apply_migrations(conn)
        yield name
    finally:
        servers.drop_database(postgres_admin_url, name)


@pytest.fixture
def empty_database_url(postgres_admin_url: str) -> Iterator[str]:
    """A new, empty database (no schema), dropped after the test."""
    name = servers.unique_name("acoustack_test")
    url = servers.create_database(postgres_admin_url, name)
    yield url
    servers.drop_database(postgres_admin_url, name)


@pytest.fixture
def database_url(postgres_admin_url: str, postgres_template: str) -> Iterator[str]:
    """A new database with the storage schema, dropped after the test."""
    name = servers.unique_name("acoustack_test")
    url = servers.create_database(postgres_admin_url, name, template=postgres_template)
    yield url
    servers.drop_database(postgres_admin_url, name)


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[servers.RabbitVhost]:
    try:
        with servers.rabbitmq_vhost() as vhost:
            yield vhost
    except servers.NoServerError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def storage_target(database_url: str) -> Iterator[str]:
    """A real storage service (in this process) on a loopback port, over this test's database."""
    from acoustack.grpc_server import start_server
    from acoustack_storage.repository import PostgresStore
    from acoustack_storage.servicer import StoreServicer, register

    store = PostgresStore.open(database_url, timeout_s=2.0)
    running = start_server([register(StoreServicer(store))], address="127.0.0.1:0")
    yield f"127.0.0.1:{running.port}"
    running.stop(0)
    store.close()
