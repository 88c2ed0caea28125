"""pytest fixtures: a real Postgres server and RabbitMQ vhost, never mocks. The fixtures that need a
service (a database with storage's schema, a running storage) are that service's own
(``acoustack_storage.testing``)."""

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


@pytest.fixture
def empty_database_url(postgres_admin_url: str) -> Iterator[str]:
    """A new, empty database (no schema), dropped after the test."""
    name = servers.unique_name("acoustack_test")
    url = servers.create_database(postgres_admin_url, name)
    yield url
    servers.drop_database(postgres_admin_url, name)


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[servers.RabbitVhost]:
    try:
        with servers.rabbitmq_vhost() as vhost:
            yield vhost
    except servers.NoServerError as exc:
        pytest.fail(str(exc), pytrace=False)
