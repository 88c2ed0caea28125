"""The harness itself: each test gets its own real database; the run gets its own RabbitMQ vhost."""

from __future__ import annotations

import pika
import psycopg


def test_each_test_has_its_own_migrated_database(database_url, postgres_admin_url):
    with psycopg.connect(database_url) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]
        assert name.startswith("acoustack_test_")
        assert conn.execute("SELECT count(*) FROM deployments").fetchone()[0] == 0
        conn.execute(
            "INSERT INTO deployments (id, name, started_at) VALUES (gen_random_uuid(), 'x', now())"
        )
    with psycopg.connect(postgres_admin_url) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()


def test_the_rabbitmq_vhost_carries_messages(rabbitmq):
    params = pika.URLParameters(rabbitmq.url)
    with pika.BlockingConnection(params) as connection:
        channel = connection.channel()
        channel.queue_declare("harness-check", auto_delete=True)
        channel.basic_publish("", "harness-check", b"hello bats")
        method, _props, body = channel.basic_get("harness-check", auto_ack=True)
        assert method is not None
        assert body == b"hello bats"
    assert rabbitmq.vhost in rabbitmq.url
