"""Each message's delivery state in the Store API (real gRPC server, real Postgres): a try's
outcome makes it wait or die, a run's page holds only due messages, the outbox is counted and
listed by state, and dead letters are retried by hand."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest

from acoustack import schema
from acoustack.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from acoustack.v1 import store_pb2 as spb
from acoustack.v1 import types_pb2 as pb

T0 = dt.datetime(2026, 6, 1, 21, 0, tzinfo=dt.UTC)
Status = schema.ResponseStatus


def outbox(client, count: int) -> list[schema.Message]:
    messages = [
        schema.Message(content=f"m{n}", created_at=T0 + dt.timedelta(seconds=n))
        for n in range(count)
    ]
    for m in messages:
        client.store_message(m)
    return messages


def fail(client, message, status=Status.FAILED, *, retry_in_s=600.0, dead_after=3, text="no"):
    client.store_response(
        schema.Response(message_id=message.id, status=status, content=text),
        spb.TryOutcome(
            refused=status is Status.FAILED,
            retry_in_s=retry_in_s,
            dead_after_refusals=dead_after,
        ),
    )


def due_contents(client) -> list[str]:
    return [m.content for m in client.get_unsent_messages(limit=100)]


def test_a_failed_try_waits_its_turn_and_the_rest_stay_due(client):
    first, *_ = outbox(client, 3)
    fail(client, first, Status.ERROR, text="HTTP 503 Service Unavailable")
    assert due_contents(client) == ["m1", "m2"]
    [waiting] = client.list_messages(schema.MessageState.BACKING_OFF)
    assert waiting.message.id == str(first.id)
    assert waiting.message.state == pb.MESSAGE_STATE_BACKING_OFF
    assert (waiting.message.failed_tries, waiting.message.refusals) == (1, 0)
    assert waiting.message.last_status == pb.RESPONSE_STATUS_ERROR
    assert waiting.last_response.content == "HTTP 503 Service Unavailable"
    due_in = waiting.message.next_attempt_at.ToDatetime(tzinfo=dt.UTC) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(seconds=590) < due_in <= dt.timedelta(seconds=600)
    counts = client.count_messages()
    assert (counts.due, counts.backing_off, counts.dead, counts.sent) == (2, 1, 0, 0)
    assert counts.next_attempt_at == waiting.message.next_attempt_at


def test_a_message_is_due_again_when_its_wait_is_over(client):
    [message] = outbox(client, 1)
    fail(client, message, Status.TIMEOUT, retry_in_s=0.3)
    assert due_contents(client) == []
    time.sleep(0.4)
    [due] = client.get_unsent_messages()
    assert (due.state, due.failed_tries, due.attempts) == (pb.MESSAGE_STATE_DUE, 1, 1)


def test_refusals_up_to_the_limit_make_a_dead_letter_temporary_failures_never_do(client):
    poison, flaky = outbox(client, 2)
    for n in range(2):
        fail(client, poison, retry_in_s=0, dead_after=3, text=f"HTTP 400 Bad Request: try {n}")
    for _ in range(5):
        fail(client, flaky, Status.ERROR, retry_in_s=0, dead_after=3)
    assert due_contents(client) == ["m0", "m1"]
    fail(client, poison, retry_in_s=0, dead_after=3, text="HTTP 400 Bad Request: try 2")
    assert due_contents(client) == ["m1"]
    [dead] = client.list_messages(schema.MessageState.DEAD)
    assert dead.message.id == str(poison.id)
    assert (dead.message.refusals, dead.message.state) == (3, pb.MESSAGE_STATE_DEAD)
    assert dead.message.HasField("dead_at")
    assert dead.last_response.content == "HTTP 400 Bad Request: try 2"
    counts = client.count_messages()
    assert (counts.due, counts.backing_off, counts.dead, counts.sent) == (1, 0, 1, 0)
    # A dead letter keeps its state: a late response is kept, no outcome moves it.
    fail(client, poison, retry_in_s=0, dead_after=3, text="late")
    assert client.count_messages().dead == 1


def test_a_success_after_failures_sends_it_and_a_later_outcome_changes_nothing(client):
    [message] = outbox(client, 1)
    fail(client, message, Status.ERROR, retry_in_s=0)
    client.store_response(
        schema.Response(message_id=message.id, status=Status.SUCCESS, content="HTTP 201")
    )
    fail(client, message, retry_in_s=0, dead_after=1)  # a second messenger, later
    [sent] = client.list_messages(schema.MessageState.SENT)
    assert sent.message.state == pb.MESSAGE_STATE_SENT and sent.message.HasField("sent_at")
    assert not sent.message.HasField("dead_at")
    assert client.count_messages().sent == 1


def test_retry_makes_dead_letters_due_again_by_id_or_all(client):
    messages = outbox(client, 4)
    for m in messages[:3]:
        fail(client, m, dead_after=1)
    fail(client, messages[3], Status.ERROR)  # backing off
    assert client.count_messages().dead == 3
    assert client.retry_messages([messages[1].id]) == [str(messages[1].id)]
    [again] = client.get_unsent_messages()
    assert (again.id, again.refusals, again.failed_tries) == (str(messages[1].id), 0, 0)
    assert len(client.list_responses(messages[1].id)) == 1  # its history stays
    retried = client.retry_messages([messages[3].id], all_dead=True)
    assert retried == [str(messages[3].id), str(messages[0].id), str(messages[2].id)]
    assert due_contents(client) == ["m0", "m1", "m2", "m3"]
    assert client.count_messages().dead == 0


def test_retry_refuses_unknown_and_sent_messages_changing_nothing(client):
    dead, sent = outbox(client, 2)
    fail(client, dead, dead_after=1)
    client.store_response(schema.Response(message_id=sent.id, status=Status.SUCCESS))
    unknown = uuid.uuid4()
    with pytest.raises(NotFoundError, match=f"message_ids: no message {unknown}"):
        client.retry_messages([dead.id, unknown])
    with pytest.raises(FailedPreconditionError, match=f"message {sent.id} was sent at"):
        client.retry_messages([dead.id, sent.id])
    with pytest.raises(InvalidArgumentError, match="message_ids.0: 'bats' is not a UUID"):
        client.retry_messages(["bats"])
    with pytest.raises(InvalidArgumentError, match="name at least one message"):
        client.retry_messages([])
    assert client.count_messages().dead == 1  # nothing changed


@pytest.mark.parametrize(
    ("outcome", "problem"),
    [
        (spb.TryOutcome(retry_in_s=-1, dead_after_refusals=3), "outcome.retry_in_s: -1.0 is not"),
        (
            spb.TryOutcome(retry_in_s=float("nan"), dead_after_refusals=3),
            "outcome.retry_in_s: nan is not",
        ),
        (spb.TryOutcome(retry_in_s=1), "outcome.dead_after_refusals: 0 is not within 1..1000"),
    ],
)
def test_a_bad_outcome_is_refused_and_keeps_nothing(client, outcome, problem):
    [message] = outbox(client, 1)
    with pytest.raises(InvalidArgumentError, match=problem):
        client.store_response(schema.Response(message_id=message.id, status=Status.ERROR), outcome)
    assert client.list_responses(message.id) == []
    assert due_contents(client) == ["m0"]


def test_listing_by_state_orders_and_limits(client):
    messages = outbox(client, 3)
    assert [e.message.content for e in client.list_messages(limit=2)] == ["m0", "m1"]
    assert [e.message.content for e in client.list_messages(newest_first=True)] == [
        "m2",
        "m1",
        "m0",
    ]
    assert not client.list_messages()[0].HasField("last_response")
    for m in messages:
        fail(client, m, dead_after=1)
    # Dead letters by when they died, newest first on request.
    assert [e.message.content for e in client.list_messages(schema.MessageState.DEAD)] == [
        "m0",
        "m1",
        "m2",
    ]
    with pytest.raises(InvalidArgumentError, match="state: 9 is not a MessageState"):
        client.call(client.stub.ListMessages, spb.ListMessagesRequest(state=9))


def test_many_responses_are_kept_in_one_call_all_or_none(client):
    sent, refused = outbox(client, 2)
    client.store_responses(
        [
            (schema.Response(message_id=sent.id, status=Status.SUCCESS, content="PUBACK"), None),
            (
                schema.Response(message_id=refused.id, status=Status.FAILED, content="400"),
                spb.TryOutcome(refused=True, retry_in_s=60, dead_after_refusals=1),
            ),
        ]
    )
    counts = client.count_messages()
    assert (counts.sent, counts.dead, counts.due) == (1, 1, 0)
    # One bad item: nothing of the call is kept, and the error names it.
    [fresh] = outbox(client, 1)[:1]
    unknown = uuid.uuid4()
    with pytest.raises(
        NotFoundError, match=f"responses.1.response.message_id: no message {unknown}"
    ):
        client.store_responses(
            [
                (schema.Response(message_id=fresh.id, status=Status.SUCCESS), None),
                (schema.Response(message_id=unknown, status=Status.SUCCESS), None),
            ]
        )
    with pytest.raises(InvalidArgumentError, match="responses.0.outcome.dead_after_refusals"):
        client.store_responses(
            [(schema.Response(message_id=fresh.id, status=Status.ERROR), spb.TryOutcome())]
        )
    with pytest.raises(InvalidArgumentError, match="responses: 0 given; send 1..1000"):
        client.store_responses([])
    assert client.list_responses(fresh.id) == []


def test_a_batch_moves_each_message_on_as_its_responses_one_at_a_time_would(client):
    # Two messengers answer for each message of a run, so one batch may hold several responses
    # of one message, out of time order; the set-based store must end where one at a time does.
    at = [T0 + dt.timedelta(seconds=s) for s in range(4)]
    tries = [
        [(Status.ERROR, at[1]), (Status.SUCCESS, at[2])],  # sent when the second answered
        [(Status.SUCCESS, at[2]), (Status.TIMEOUT, at[1])],  # the later answer's status stays
        [(Status.TIMEOUT, at[3]), (Status.ERROR, at[3])],  # equal times: the last one given
        [(Status.SUCCESS, at[1]), (Status.SUCCESS, at[3])],  # sent at its first success
    ]
    batched, single = outbox(client, len(tries)), outbox(client, len(tries))
    for messages in (batched, single):
        for m in messages:  # an earlier run's try, later than some of these answers
            client.store_response(
                schema.Response(message_id=m.id, status=Status.ERROR, received_at=at[1])
            )
    pairs = [
        (schema.Response(message_id=m.id, status=s, content=f"{s.value}", received_at=t), None)
        for m, answers in zip(batched, tries, strict=True)
        for s, t in answers
    ]
    client.store_responses(pairs)
    for m, answers in zip(single, tries, strict=True):
        for s, t in answers:
            client.store_response(
                schema.Response(message_id=m.id, status=s, content=f"{s.value}", received_at=t)
            )

    def states(messages):
        found = {e.message.id: e for e in client.list_messages(None, limit=100)}
        sent = {e.message.id: e for e in client.list_messages(schema.MessageState.SENT)}
        rows = []
        for m in messages:
            entry = (found.get(str(m.id)) or sent[str(m.id)]).message
            rows.append(
                (
                    entry.attempts,
                    entry.last_attempt_at.ToDatetime(tzinfo=dt.UTC),
                    entry.last_status,
                    entry.sent_at.ToDatetime(tzinfo=dt.UTC) if entry.HasField("sent_at") else None,
                    [(r.status, r.content) for r in client.list_responses(m.id)],
                )
            )
        return rows

    got = states(batched)
    assert got == states(single)
    assert [row[0] for row in got] == [3, 3, 3, 3]
    assert [row[2] for row in got] == [
        pb.RESPONSE_STATUS_SUCCESS,
        pb.RESPONSE_STATUS_SUCCESS,
        pb.RESPONSE_STATUS_ERROR,
        pb.RESPONSE_STATUS_SUCCESS,
    ]
    assert [row[3] for row in got] == [at[2], at[2], None, at[1]]


@pytest.mark.parametrize("newest_first", [False, True])
def test_due_messages_a_page_at_a_time_are_those_of_one_read(client, newest_first):
    outbox(client, 7)
    client.store_message(schema.Message(content="urgent", created_at=T0, priority=5))
    client.store_message(  # the same time as m3: the id decides between them
        schema.Message(content="twin", created_at=T0 + dt.timedelta(seconds=3))
    )
    whole = client.get_unsent_messages(limit=100, newest_first=newest_first)
    pages, after = [], ""
    while page := client.get_unsent_messages(limit=3, newest_first=newest_first, after_id=after):
        pages.append([m.content for m in page])
        after = page[-1].id
    assert [c for p in pages for c in p] == [m.content for m in whole]
    assert len(pages) == 3 and whole[0].content == "urgent"
    # A page after a message sent meanwhile still starts after it.
    client.store_response(schema.Response(message_id=whole[2].id, status=Status.SUCCESS))
    assert [m.content for m in client.get_unsent_messages(limit=2, after_id=whole[2].id,
            newest_first=newest_first)] == [m.content for m in whole[3:5]]  # fmt: skip
    unknown = uuid.uuid4()
    with pytest.raises(NotFoundError, match=f"after_id: no message {unknown}"):
        client.get_unsent_messages(limit=2, after_id=str(unknown))
    with pytest.raises(InvalidArgumentError, match="after_id"):
        client.get_unsent_messages(limit=2, after_id="not-an-id")
