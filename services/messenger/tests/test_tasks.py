"""The messenger's tasks, called in this process, over the real storage service (real Postgres),
a real HTTP server and the local Mosquitto."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
import uuid
from collections.abc import Iterator

import pytest

from acoustack import schema
from acoustack.celery_app import create_app
from acoustack.clients import RetryPolicy, StoreClient
from acoustack.errors import InvalidArgumentError, UnavailableError
from acoustack.names import Queue
from acoustack.tasks import generate_send_messages_task
from acoustack.testing import factories
from acoustack.v1 import types_pb2 as pb
from acoustack_messenger import device_status
from acoustack_messenger.delivery import Backoff
from acoustack_messenger.messengers import FIRST_MQTT_WINDOW, HttpMessenger
from acoustack_messenger.outbox import Outbox
from acoustack_messenger.summaries import DetectionSummariser
from acoustack_messenger.tasks import HeartbeatNotDelivered, MessengerContext, register_tasks

T0 = dt.datetime(2026, 6, 1, 21, 0, tzinfo=dt.UTC)


@pytest.fixture
def context(store, tmp_path) -> Iterator[MessengerContext]:
    made = MessengerContext("unused:1", tmp_path, store=store)
    yield made
    made.close_messengers()


@pytest.fixture
def tasks(context):
    # No broker is contacted: the tasks are called directly, as Celery's worker would run them.
    return register_tasks(create_app("amqp://guest:guest@127.0.0.1:5672//"), context)


def fill_outbox(store: StoreClient, count: int) -> list[schema.Message]:
    messages = [
        schema.Message(content=json.dumps({"n": n}), created_at=T0 + dt.timedelta(seconds=n))
        for n in range(count)
    ]
    for m in messages:
        store.store_message(m)
    return messages


def statuses(store: StoreClient, message: schema.Message) -> list[int]:
    return [r.status for r in store.list_responses(message.id)]


def test_send_messages_drains_the_outbox_through_http_and_mqtt(
    tasks, store, http_sink, mqtt_broker, subscriber, topic
):
    messages = fill_outbox(store, 3)
    config = {
        "messaging": {
            "http_url": f"{http_sink.url}/ok",
            "mqtt_host": mqtt_broker.host,
            "mqtt_port": mqtt_broker.port,
            "mqtt_topic": topic,
        }
    }
    result = tasks["send_messages"](program_config=config)
    assert result == {"responses": {"success": 6}, "stopped_early": "", "dead_letters": []}
    assert store.get_unsent_messages() == []
    for m in messages:
        assert statuses(store, m) == [pb.RESPONSE_STATUS_SUCCESS] * 2
    assert [p.headers["X-Message-Id"] for p in http_sink.posts()] == [str(m.id) for m in messages]
    arrived = [subscriber.next(topic=topic) for _ in messages]
    assert [r.user_properties["message_id"] for r in arrived] == [str(m.id) for m in messages]
    assert [r.payload for r in arrived] == [m.content.encode() for m in messages]
    # Nothing left: the next run sends nothing.
    assert tasks["send_messages"](program_config=config)["responses"] == {}


@pytest.mark.parametrize(
    ("order", "first_run", "second_run"),
    [("oldest-first", [0, 1], [2, 3]), ("newest-first", [4, 3], [2, 1])],
)
def test_each_run_sends_at_most_max_per_run_in_the_configured_order(
    tasks, store, http_sink, order, first_run, second_run
):
    fill_outbox(store, 5)
    config = {"messaging": {"http_url": f"{http_sink.url}/ok", "max_per_run": 2, "order": order}}
    tasks["send_messages"](program_config=config)
    assert [json.loads(p.body)["n"] for p in http_sink.posts()] == first_run
    tasks["send_messages"](program_config=config)
    assert [json.loads(p.body)["n"] for p in http_sink.posts()] == first_run + second_run
    assert len(store.get_unsent_messages()) == 1


def posted_ids(http_sink) -> list[str]:
    return [p.headers["X-Message-Id"] for p in http_sink.posts()]


def test_poison_ahead_of_the_outbox_never_blocks_the_messages_behind_it(tasks, store, http_sink):
    """3 x max_per_run messages the server refuses for good, then good ones: each poison message
    is tried once, by three runs, and the next run sends the good ones; the poison waits for its
    backoff and is not sent again meanwhile (before, it was sent at every run, for ever)."""
    per_run = 3
    poison = [
        schema.Message(content=json.dumps({"poison": n}), created_at=T0 + dt.timedelta(seconds=n))
        for n in range(3 * per_run)
    ]
    good = [
        schema.Message(
            content=json.dumps({"n": n}), created_at=T0 + dt.timedelta(minutes=1, seconds=n)
        )
        for n in range(per_run)
    ]
    for m in poison + good:
        store.store_message(m)
    config = {"messaging": {"http_url": f"{http_sink.url}/picky", "max_per_run": per_run}}
    for _ in range(3):
        result = tasks["send_messages"](program_config=config)
        assert result["responses"] == {"failed": per_run}
    assert posted_ids(http_sink) == [str(m.id) for m in poison]  # each once, oldest first
    result = tasks["send_messages"](program_config=config)
    assert result["responses"] == {"success": per_run}
    assert posted_ids(http_sink)[-per_run:] == [str(m.id) for m in good]
    for _ in range(3):  # nothing is due now: the poison waits for its backoff
        assert tasks["send_messages"](program_config=config)["responses"] == {}
    assert len(http_sink.posts()) == 4 * per_run
    counts = store.count_messages()
    assert (counts.due, counts.backing_off, counts.sent, counts.dead) == (
        0,
        3 * per_run,
        per_run,
        0,
    )
    waiting = store.list_messages(schema.MessageState.BACKING_OFF)
    now = dt.datetime.now(dt.UTC)
    for entry in waiting:  # about retry_backoff_s (60 s by default), with jitter
        wait = entry.message.next_attempt_at.ToDatetime(tzinfo=dt.UTC) - now
        assert dt.timedelta(seconds=25) < wait <= dt.timedelta(seconds=60)
        assert entry.last_response.content == "HTTP 400 Bad Request: poison refused"
    assert len({e.message.next_attempt_at.ToNanoseconds() for e in waiting}) > 1  # jittered


def test_a_message_refused_dead_after_refusals_times_is_a_dead_letter(
    tasks, store, http_sink, caplog
):
    [message] = fill_outbox(store, 1)
    config = {
        "messaging": {
            "http_url": f"{http_sink.url}/reject",
            "retry_backoff_s": 1,
            "dead_after_refusals": 2,
        }
    }
    assert tasks["send_messages"](program_config=config)["dead_letters"] == []
    assert tasks["send_messages"](program_config=config)["responses"] == {}  # waiting
    time.sleep(1.05)
    caplog.set_level(logging.WARNING, logger="acoustack_messenger")
    result = tasks["send_messages"](program_config=config)
    assert result == {
        "responses": {"failed": 1},
        "stopped_early": "",
        "dead_letters": [str(message.id)],
    }
    time.sleep(1.05)
    assert tasks["send_messages"](program_config=config)["responses"] == {}  # never again
    assert len(http_sink.posts()) == 2
    [dead] = store.list_messages(schema.MessageState.DEAD)
    assert (dead.message.id, dead.message.refusals) == (str(message.id), 2)
    assert dead.last_response.content == 'HTTP 400 Bad Request: {"error": "missing field"}'
    assert f"message {message.id} is a dead letter after 2 refusal(s)" in caplog.text
    # Retried by hand, it is sent at the next run.
    store.retry_messages([message.id])
    assert tasks["send_messages"](program_config=config)["responses"] == {"failed": 1}


@pytest.mark.parametrize("path", ["/fail", "/late", "/busy"])
def test_temporary_failures_back_off_and_never_make_a_dead_letter(tasks, store, http_sink, path):
    fill_outbox(store, 1)
    config = {
        "messaging": {
            "http_url": f"{http_sink.url}{path}",
            "retry_backoff_s": 1,
            "dead_after_refusals": 1,
        }
    }
    assert tasks["send_messages"](program_config=config)["responses"] == {"error": 1}
    assert tasks["send_messages"](program_config=config)["responses"] == {}
    counts = store.count_messages()
    assert (counts.backing_off, counts.dead) == (1, 0)
    wait = counts.next_attempt_at.ToDatetime(tzinfo=dt.UTC) - dt.datetime.now(dt.UTC)
    if path == "/busy":  # Retry-After: 120 is honoured over the 1 s backoff
        assert dt.timedelta(seconds=110) < wait <= dt.timedelta(seconds=120)
    else:
        assert wait <= dt.timedelta(seconds=1)


def test_the_backoff_doubles_with_each_failed_try_in_a_row(tasks, store, closed_port):
    fill_outbox(store, 1)
    config = {"messaging": {"http_url": f"http://127.0.0.1:{closed_port}/in", "retry_backoff_s": 1}}

    def wait_s() -> float:
        [entry] = store.list_messages(schema.MessageState.BACKING_OFF)
        due = entry.message.next_attempt_at.ToDatetime(tzinfo=dt.UTC)
        return (due - dt.datetime.now(dt.UTC)).total_seconds()

    assert tasks["send_messages"](program_config=config)["responses"] == {"error": 1}
    first = wait_s()
    time.sleep(first + 0.05)
    assert tasks["send_messages"](program_config=config)["responses"] == {"error": 1}
    assert 0.3 < first <= 1.0 and 0.9 < wait_s() <= 2.0  # [1/2, 1] x 1 s, then x 2 s
    [entry] = store.list_messages(schema.MessageState.BACKING_OFF)
    assert (entry.message.failed_tries, entry.message.refusals) == (2, 0)


def test_the_jittered_wait_stays_within_half_and_all_of_its_capped_doubling():
    backoff = Backoff(first_s=60, max_s=3600, dead_after_refusals=3)
    rng = random.Random(12)
    for failed_tries, ceiling in [(0, 60), (1, 120), (5, 1920), (6, 3600), (500, 3600)]:
        waits = [backoff.wait_s(failed_tries, rng) for _ in range(200)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert max(waits) - min(waits) > ceiling / 4  # spread, not one value


def test_an_unreachable_server_ends_the_run_after_one_attempt(tasks, store, closed_port):
    messages = fill_outbox(store, 3)
    config = {"messaging": {"http_url": f"http://127.0.0.1:{closed_port}/in"}}
    result = tasks["send_messages"](program_config=config)
    assert result["responses"] == {"error": 1}
    assert result["stopped_early"] == "no messenger reached its server; 2 message(s) wait"
    assert statuses(store, messages[0]) == [pb.RESPONSE_STATUS_ERROR]
    assert statuses(store, messages[1]) == statuses(store, messages[2]) == []
    counts = store.count_messages()  # the one tried backs off; the others were not tried
    assert (counts.due, counts.backing_off) == (2, 1)


def test_one_reachable_messenger_keeps_the_run_going(tasks, store, http_sink, closed_port):
    fill_outbox(store, 3)
    config = {
        "messaging": {
            "http_url": f"{http_sink.url}/ok",
            "mqtt_host": "127.0.0.1",
            "mqtt_port": closed_port,
        }
    }
    result = tasks["send_messages"](program_config=config)
    assert result["responses"] == {"success": 3, "error": 3}
    assert store.get_unsent_messages() == []  # one success is enough


def test_a_run_stops_starting_sends_when_its_time_is_up(store, http_sink):
    fill_outbox(store, 3)
    outbox = Outbox(store, deadline=time.monotonic())
    generate_send_messages_task(outbox, [HttpMessenger(f"{http_sink.url}/ok")])()
    assert len(http_sink.posts()) == 1  # the first is always tried
    assert outbox.stopped_early == "out of time for this run; 2 message(s) wait"


def test_without_a_messenger_messages_stay_and_it_is_said_once(tasks, store, caplog):
    fill_outbox(store, 2)
    caplog.set_level(logging.WARNING, logger="acoustack_messenger")
    for config in ({}, {"recording": {}}):
        assert tasks["send_messages"](program_config=config)["responses"] == {}
    assert tasks["send_messages"]()["responses"] == {}  # sent by hand, with no configuration
    for _ in range(2):
        assert tasks["send_messages"](program_config={"messaging": {}})["responses"] == {}
    assert tasks["heartbeat"](program_config={"messaging": {}}) == {"sent": False}
    said = [r.getMessage() for r in caplog.records]
    assert said.count("the program has no messaging section: messages stay in the outbox") == 1
    assert said.count(
        "no messenger configured (messaging.http_url and messaging.mqtt_host are empty): "
        "messages stay in the outbox"
    ) == 1  # fmt: skip
    assert len(store.get_unsent_messages()) == 2


def test_a_bad_messaging_section_is_refused_naming_the_field(tasks, store, http_sink):
    """Refused as the task's arguments are read (and acknowledged: sent again it would fail the
    same way); nothing is sent."""
    fill_outbox(store, 1)
    refused = tasks["send_messages"](program_config={"messaging": {"max_per_run": 0}})
    assert refused["outcome"] == "rejected"
    assert "program_config.messaging.max_per_run: Input should be" in refused["reason"]
    with pytest.raises(InvalidArgumentError, match=r"messaging\.http_url: 'bats' is not"):
        tasks["send_messages"](program_config={"messaging": {"http_url": "bats"}})
    assert http_sink.posts() == [] and len(store.get_unsent_messages()) == 1


# MQTT delivery keeps a window of QoS 1 publishes in flight (real Mosquitto; the relay reads the
# packets on the way, and can take the link away).


def mqtt_section(port: int, topic: str, **extra) -> dict:
    return {
        "messaging": {
            "mqtt_host": "127.0.0.1",
            "mqtt_port": port,
            "mqtt_topic": topic,
            "max_per_run": 1000,
            "homeassistant_discovery": False,
            **extra,
        }
    }


def contents(store: StoreClient, state: schema.MessageState) -> set[str]:
    return {e.message.content for e in store.list_messages(state, limit=1000)}


def test_a_window_of_publishes_in_flight_is_all_acknowledged_and_stored_as_sent(
    tasks, store, mqtt_relay, subscriber, topic
):
    messages = fill_outbox(store, 300)
    relay = mqtt_relay()
    result = tasks["send_messages"](program_config=mqtt_section(relay.port, topic))
    assert result == {"responses": {"success": 300}, "stopped_early": "", "dead_letters": []}
    # Several publishes awaited their PUBACK at once (up to Mosquitto's Receive Maximum, 20),
    # not one at a time as before (1, and the availability's).
    assert 3 < relay.most_in_flight <= 20
    sent = {m.content for m in messages}
    assert {p.decode() for p in relay.acknowledged} >= sent
    assert contents(store, schema.MessageState.SENT) == sent
    assert store.count_messages().sent == 300
    arrived = [subscriber.next(topic=topic) for _ in messages]
    assert [r.payload.decode() for r in arrived] == [m.content for m in messages]  # in order
    assert {r.user_properties["message_id"] for r in arrived} == {str(m.id) for m in messages}
    [entry] = store.list_responses(messages[150].id)
    assert entry.status == pb.RESPONSE_STATUS_SUCCESS and entry.content.startswith("PUBACK")


def test_a_broker_gone_mid_window_leaves_the_unacknowledged_unsent_and_backing_off(
    tasks, store, mqtt_relay, mqtt_broker, subscriber, topic
):
    messages = fill_outbox(store, 300)
    relay = mqtt_relay(cut_after=60)  # 60 PUBACKs reach the messenger, then the link is gone
    config = mqtt_section(relay.port, topic, retry_backoff_s=1)
    result = tasks["send_messages"](program_config=config)
    acknowledged = {p.decode() for p in relay.acknowledged} - {"online"}  # its availability
    assert len(acknowledged) == 59
    # Only what the broker acknowledged is sent (the last few PUBACKs forwarded may be lost with
    # the link: those are sent again); the rest, in flight when the link went or never
    # published, is unsent: a temporary failure that backs off.
    sent = contents(store, schema.MessageState.SENT)
    # (at most a Receive Maximum, 20, of PUBACKs can be on their way)
    assert 59 - 20 <= len(sent) <= 59 and sent <= acknowledged
    # The window was the messenger's first (FIRST_MQTT_WINDOW); the run stops after it, as no
    # messenger reached its server, and the messages behind it were not tried.
    tried = {m.content for m in messages[:FIRST_MQTT_WINDOW]}
    waiting = contents(store, schema.MessageState.BACKING_OFF)
    assert waiting == tried - sent
    assert contents(store, schema.MessageState.DUE) == {m.content for m in messages} - tried
    assert result["responses"] == {"success": len(sent), "error": FIRST_MQTT_WINDOW - len(sent)}
    assert result["stopped_early"] == "no messenger reached its server; 200 message(s) wait"
    assert result["dead_letters"] == []
    lost = next(m for m in messages if m.content in waiting)
    [response] = store.list_responses(lost.id)
    assert response.status == pb.RESPONSE_STATUS_ERROR
    assert "the connection was lost before the PUBACK" in response.content
    entry = next(
        e
        for e in store.list_messages(schema.MessageState.BACKING_OFF)
        if e.message.id == str(lost.id)
    )
    assert (entry.message.failed_tries, entry.message.refusals) == (1, 0)
    # Once their backoff is over, the next run (the broker reachable again) sends them all.
    time.sleep(1.1)
    again = tasks["send_messages"](program_config=mqtt_section(mqtt_broker.port, topic))
    assert again["responses"] == {"success": 300 - len(sent)}
    assert store.count_messages().sent == 300
    arrived = {r.payload.decode() for r in subscriber.drain() if r.topic == topic}
    assert arrived >= {m.content for m in messages}  # at least once, each


def test_a_puback_refusal_in_a_window_is_permanent_and_makes_dead_letters(
    tasks, store, refusing_broker
):
    """The broker's ACL refuses the topic: every message of the window gets its own PUBACK
    "Not authorized", a refusal for good (not a lost connection), and with dead_after_refusals
    1 each one is a dead letter at once; the run does not stop early."""
    messages = fill_outbox(store, 40)
    config = mqtt_section(refusing_broker.port, "refused/here", dead_after_refusals=1)
    result = tasks["send_messages"](program_config=config)
    assert result["responses"] == {"failed": 40}
    assert result["stopped_early"] == ""
    assert sorted(result["dead_letters"]) == sorted(str(m.id) for m in messages)
    dead = store.list_messages(schema.MessageState.DEAD, limit=100)
    assert len(dead) == 40 and all(e.message.refusals == 1 for e in dead)
    assert "refused the message on refused/here: Not authorized" in dead[0].last_response.content
    assert store.get_unsent_messages() == []  # dead letters are not tried again


def test_storage_unavailable_is_raised_for_celery_to_retry(tmp_path, closed_port, http_sink):
    unreachable = StoreClient(f"127.0.0.1:{closed_port}", retry=RetryPolicy(budget_s=0.3))
    context = MessengerContext("unused:1", tmp_path, store=unreachable)
    tasks = register_tasks(create_app("amqp://guest:guest@127.0.0.1:5672//"), context)
    config = {"messaging": {"http_url": f"{http_sink.url}/ok"}, "summary": {}}
    for name in ("send_messages", "summarise"):
        assert UnavailableError in tasks[name].autoretry_for
        with pytest.raises(UnavailableError, match=f"127.0.0.1:{closed_port} unavailable"):
            tasks[name](program_config=config)
    unreachable.close()


def test_the_heartbeat_carries_the_device_and_its_metrics(tasks, context, store, http_sink):
    # Before any deployment, the heartbeat says nothing of one (the content as it always was).
    assert tasks["heartbeat"](program_config={"messaging": {"http_url": f"{http_sink.url}/ok"}})
    assert "deployment" not in json.loads(http_sink.posts()[-1].body)
    deployment = store.start_deployment("meadow", latitude=52.0123, longitude=-1.5)
    started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    store.store_recording(factories.recording(deployment.id, started_at=started))
    assert tasks["heartbeat"](program_config={"messaging": {"http_url": f"{http_sink.url}/ok"}})
    post = http_sink.posts()[-1]
    beat = schema.Heartbeat.model_validate_json(post.body)
    # Where it is, for a hub's map: the current deployment as storage has it.
    assert beat.deployment == schema.HeartbeatDeployment(
        id=uuid.UUID(deployment.id), name="meadow", latitude=52.0123, longitude=-1.5
    )
    # The device's id as storage, which owns it, gives it: the same as on its recordings.
    assert beat.device_id == store.device_id() == context.device_id
    assert post.headers["X-Device-Id"] == store.device_id()
    assert abs(beat.sent_at - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=30)
    by_name = {m.name: m for m in beat.metrics}
    assert set(by_name) == {
        "free_storage",
        "used_storage",
        "free_memory",
        "process_memory",
        "process_cpu",
        "last_recording_age",
        "failed_recordings_last_hour",
        "recordings_deleted_for_space_last_day",
        "recordings_deleted_for_age_last_day",
        *(f"queue_{q.value}_waiting" for q in Queue),
    }
    assert beat.status == "ok"
    # No file-management run yet, so retention has said nothing (tests/e2e/test_card_never_fills.py
    # shows these after a month).
    assert by_name["recordings_deleted_for_space_last_day"].value == -1
    assert 290 < by_name["last_recording_age"].value < 400
    assert by_name["free_storage"].unit == "GB" and by_name["free_storage"].value > 0
    assert store.get_unsent_messages() == []  # straight out, not through the outbox


def test_the_heartbeat_says_what_is_wrong_with_the_device(tasks, store, http_sink):
    """A deployment recording every 10 s that has stored nothing for 50 minutes but one failed
    recording: the heartbeat turns degraded, names both, and carries the count."""
    now = dt.datetime.now(dt.UTC)
    deployment = store.start_deployment("meadow")
    failed = factories.recording(deployment.id, started_at=now - dt.timedelta(minutes=1))
    store.store_recording(failed)
    store.mark_recording_failed(failed.id, "device: Invalid input device (-9996)")
    config = {
        "recording": {"interval_s": 10},
        "messaging": {"http_url": f"{http_sink.url}/ok"},
    }
    # Silence is judged from the deployment's start: ask as if 50 minutes had passed.
    later = now + dt.timedelta(minutes=50)
    judged = device_status.Assessment(store, None, config, now=later)
    status = judged.status()
    assert status.startswith("degraded: no recording yet for 50 min (one is due every 10 s)")
    assert "1 recording(s) failed in the last hour (last: device: Invalid input device" in status
    assert {f().name: f().value for f in judged.metrics()}["failed_recordings_last_hour"] == 1

    # Through the task, now: the failure is within the hour, the silence not yet long.
    assert tasks["heartbeat"](program_config=config)
    beat = schema.Heartbeat.model_validate_json(http_sink.posts()[-1].body)
    assert beat.status.startswith("degraded: 1 recording(s) failed in the last hour")
    assert {m.name: m.value for m in beat.metrics}["failed_recordings_last_hour"] == 1


def test_an_unreachable_storage_is_said_and_the_heartbeat_still_goes(
    http_sink, closed_port, tmp_path
):
    unreachable = StoreClient(f"127.0.0.1:{closed_port}", retry=RetryPolicy(budget_s=0))
    judged = device_status.Assessment(unreachable, None, None)
    assert judged.status().startswith("degraded: storage unreachable")
    assert {f().name for f in judged.metrics()} == {
        "failed_recordings_last_hour",
        "recordings_deleted_for_space_last_day",
        "recordings_deleted_for_age_last_day",
    }


def test_an_undelivered_heartbeat_is_retried_a_few_times(tasks, closed_port):
    task = tasks["heartbeat"]
    assert HeartbeatNotDelivered in task.autoretry_for and task.max_retries == 3
    config = {"messaging": {"http_url": f"http://127.0.0.1:{closed_port}/"}}
    with pytest.raises(HeartbeatNotDelivered, match="not delivered by any of 1 messenger"):
        task(program_config=config)


def store_output(store: StoreClient, deployment_id, started_at, scored_species):
    recording = factories.recording(deployment_id, started_at=started_at)
    store.store_recording(recording)
    detections = [
        factories.detection(
            detection_score=0.99,
            tags=[
                schema.PredictedTag(
                    tag=schema.Tag(key="species", value=species), confidence=confidence
                ),
                schema.PredictedTag(tag=schema.Tag(key="call", value="echolocation")),
            ],
        )
        for species, confidence in scored_species
    ]
    store.store_model_output(factories.model_output(recording.id, detections=detections))


def test_a_summary_counts_each_species_over_the_last_complete_window(store):
    deployment = store.start_deployment("meadow")
    hour = dt.datetime(2026, 6, 1, 21, 0, tzinfo=dt.UTC)
    store_output(store, deployment.id, hour - dt.timedelta(minutes=1), [("Myotis", 0.99)])  # before
    store_output(store, deployment.id, hour, [("Myotis", 0.2), ("Nyctalus", 0.95)])
    store_output(store, deployment.id, hour + dt.timedelta(minutes=30), [("Myotis", 0.6)])
    store_output(store, deployment.id, hour + dt.timedelta(minutes=59), [("Myotis", 0.05)])
    store_output(store, deployment.id, hour + dt.timedelta(hours=1), [("Myotis", 0.7)])  # after
    summariser = DetectionSummariser(store, 3600, "device-7", page_size=2)  # pages: 2 + 1 + 1
    message = summariser.build_summary(hour + dt.timedelta(hours=1, minutes=0, seconds=3))
    summary = json.loads(message.content)
    assert summary == {
        "kind": "summary",
        "device_id": "device-7",
        "window": {"start": "2026-06-01T21:00:00Z", "end": "2026-06-01T22:00:00Z"},
        "detections": 4,
        "tag_key": "species",
        "band_edges": {"low": [0.1, 0.5], "mid": [0.5, 0.9], "high": [0.9, 1.0]},
        "species": {
            "Myotis": {
                "count": 3,
                "mean": round((0.2 + 0.6 + 0.05) / 3, 4),
                "min": 0.05,
                "max": 0.6,
                "bands": {"low": 1, "mid": 1, "high": 0},
            },
            "Nyctalus": {
                "count": 1,
                "mean": 0.95,
                "min": 0.95,
                "max": 0.95,
                "bands": {"low": 0, "mid": 0, "high": 1},
            },
        },
        "truncated": False,
    }
    # Later in the same interval: the same window, the same message id.
    again = summariser.build_summary(hour + dt.timedelta(hours=1, minutes=40))
    assert again.id == message.id and again.content == message.content


def test_the_programs_tag_key_decides_what_a_summary_counts(tasks, store, context):
    """summary.tag_key: a model server's own key (here `call`) is counted, not `species`."""
    deployment = store.start_deployment("meadow")
    start, _ = DetectionSummariser(store, 86_400, context.device_id).window(dt.datetime.now(dt.UTC))
    store_output(store, deployment.id, start + dt.timedelta(hours=2), [("Myotis", 0.8)])
    result = tasks["summarise"](
        program_config={"summary": {"interval_s": 86_400, "tag_key": "call"}}
    )
    [unsent] = [m for m in store.get_unsent_messages() if m.id == result["messages"][0]]
    summary = json.loads(unsent.content)
    assert summary["tag_key"] == "call"
    assert set(summary["species"]) == {"echolocation"}
    assert summary["species"]["echolocation"]["count"] == 1


def test_an_empty_window_is_summarised_too(store):
    summary = json.loads(DetectionSummariser(store, 600, "d").build_summary(T0).content)
    assert summary["detections"] == 0 and summary["species"] == {}
    assert summary["window"] == {"start": "2026-06-01T20:50:00Z", "end": "2026-06-01T21:00:00Z"}


def test_the_summarise_task_puts_one_summary_in_the_outbox(tasks, store, context):
    deployment = store.start_deployment("meadow")
    summariser = DetectionSummariser(store, 86_400, context.device_id)
    start, _ = summariser.window(dt.datetime.now(dt.UTC))
    store_output(store, deployment.id, start + dt.timedelta(hours=2), [("Myotis", 0.8)])
    config = {"summary": {"interval_s": 86_400}}
    first = tasks["summarise"](program_config=config)
    second = tasks["summarise"](program_config=config)
    assert first == second and len(first["messages"]) == 1
    [unsent] = store.get_unsent_messages()
    assert unsent.id == first["messages"][0]
    summary = json.loads(unsent.content)
    assert summary["species"]["Myotis"]["count"] == 1
    assert summary["device_id"] == context.device_id
    uuid.UUID(unsent.id)
    assert tasks["summarise"](program_config={}) == {"messages": []}
