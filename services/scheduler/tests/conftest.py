"""Fixtures the scheduler's tests share."""

from __future__ import annotations

import pytest

from acoustack.celery_app import create_app
from acoustack.names import Queue


def purge_all(app) -> None:
    with app.connection_for_write() as connection:
        for queue in Queue:
            app.amqp.queues[queue.value].bind(connection).declare()
            app.amqp.queues[queue.value].bind(connection).purge()


@pytest.fixture
def app(rabbitmq):
    """A Celery app on the test vhost, with every queue of ours declared and empty (before and
    after the test)."""
    app = create_app(rabbitmq.url)
    purge_all(app)
    yield app
    purge_all(app)
