"""Domain events on acoustack.events, from a real store to a real RabbitMQ: each change is
announced once after it commits, and a broker that is away never holds up or fails a write."""

from __future__ import annotations

import json
import time

import pika
import pytest

from acoustack import convert, schema
from acoustack.names import EVENTS_EXCHANGE
from acoustack.testing import factories
from acoustack_storage.events import EventPublisher
from acoustack_storage.repository import PostgresStore, RecordingFilter


@pytest.fixture
def subscriber(rabbitmq):
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq.url))
    channel = connection.channel()
    channel.exchange_declare(EVENTS_EXCHANGE, exchange_type="topic", durable=True)
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, EVENTS_EXCHANGE, routing_key="#")

    def received(count: int, timeout_s: float = 10.0) -> list[dict]:
        events, deadline = [], time.monotonic() + timeout_s
        while len(events) < count and time.monotonic() < deadline:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                time.sleep(0.05)
                continue
            assert properties.content_type == "application/json"
            events.append({"routing_key": method.routing_key, **json.loads(body)})
        return events

    yield received
    connection.close()


@pytest.fixture
def store(database_url):
    s = PostgresStore.open(database_url, timeout_s=2.0)
    yield s
    s.close()


def test_each_change_is_announced_once(store, rabbitmq, subscriber):
    publisher = EventPublisher(rabbitmq.url)
    store.events = publisher
    deployment = store.start_deployment(schema.Deployment(name="meadow"))
    recording = factories.recording(deployment.id)
    store.store_recording(recording)
    store.store_recording(recording)  # a retried registration: nothing new, no event
    output = factories.model_output(recording.id, 4)
    store.store_model_output(convert.model_output_to_proto(output))
    store.store_model_output(convert.model_output_to_proto(output))  # redelivered: no event
    store.update_recording_path(
        recording.id, "/recordings/2026-06-01/a.wav", schema.RecordingStatus.SAVED
    )
    message, _ = store.store_message(schema.Message(content="{}"))
    store.store_response(schema.Response(message_id=message.id, status=schema.ResponseStatus.ERROR))
    store.store_response(
        schema.Response(message_id=message.id, status=schema.ResponseStatus.SUCCESS)
    )
    events = subscriber(4)
    assert [e["routing_key"] for e in events] == [
        "recording.stored", "model_output.stored", "recording.filed", "message.sent",
    ]  # fmt: skip
    assert all(e["event"] == e["routing_key"] for e in events)
    assert events[0]["recording_id"] == str(recording.id) and events[0]["status"] == "temporary"
    assert events[1]["detections"] == 4 and events[1]["recording_id"] == str(recording.id)
    assert events[2]["status"] == "saved" and events[2]["path"].endswith("a.wav")
    assert events[3]["message_id"] == str(message.id)
    assert subscriber(1, timeout_s=0.5) == [], "an event was announced twice"
    publisher.close()


def test_a_broker_that_is_away_never_holds_up_a_write(store):
    store.events = EventPublisher("amqp://guest:guest@127.0.0.1:1/", retry_s=0.1)
    deployment = store.start_deployment(schema.Deployment(name="meadow"))
    started = time.monotonic()
    for _ in range(20):
        store.store_recording(factories.recording(deployment.id))
    assert time.monotonic() - started < 2.0
    assert len(store.list_recordings(RecordingFilter(limit=100))) == 20


def test_outputs_stored_before_the_counts_are_counted_by_the_backfill(store):
    from acoustack_storage.activity import backfill_tag_counts

    deployment = store.start_deployment(schema.Deployment(name="old"))
    recording = factories.recording(deployment.id)
    store.store_recording(recording)
    store.store_model_output(convert.model_output_to_proto(factories.model_output(recording.id, 6)))
    with store.connection() as conn:
        before = conn.execute("SELECT sum(detections) FROM detection_tag_counts").fetchone()[0]
        conn.execute("DELETE FROM detection_tag_counts")  # as an output stored before 0005
    with store.connection() as conn:
        assert backfill_tag_counts(conn) == 1
        assert backfill_tag_counts(conn) == 0  # nothing left to count
        after = conn.execute("SELECT sum(detections) FROM detection_tag_counts").fetchone()[0]
    assert before == after == 6  # each of the six detections once (key species)
