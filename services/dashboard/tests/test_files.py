"""The messages and files page over real storage and the real scheduler: the outbox backlog and
the last responses, disk use by folder of the recordings volume, and what retention would delete
next (nothing is deleted by looking)."""

from __future__ import annotations

import datetime as dt
import re

from acoustack import schema
from acoustack.testing import factories
from acoustack_dashboard.testing import Client


def section(page: str, name: str) -> str:
    return page.split(f'<section id="{name}">', 1)[1].split("</section>", 1)[0]


def test_outbox_responses_disk_and_retention(web: Client, store_client, control_target,
                                             filed_recording, recordings_root):  # fmt: skip
    waiting = [store_client.store_message(schema.Message(content=f'{{"n": {i}}}')).message
               for i in range(3)]  # fmt: skip
    delivered = store_client.store_message(schema.Message(content='{"n": 99}')).message
    store_client.store_response(schema.Response(message_id=delivered.id, status=schema.ResponseStatus.SUCCESS,
                                                content="202 Accepted"))  # fmt: skip
    store_client.store_response(schema.Response(message_id=waiting[0].id, status=schema.ResponseStatus.ERROR,
                                                content="connection refused"))  # fmt: skip
    web.login()
    page = web.get("/files").text
    outbox = section(page, "outbox")
    assert '<span id="unsent-count">3</span>' in outbox and "{&#34;n&#34;: 1}" in outbox
    responses = section(page, "responses")
    assert "202 Accepted" in responses and "connection refused" in responses
    assert responses.index("connection refused") < responses.index("202 Accepted")  # newest first
    disk = section(page, "disk")
    size = filed_recording.path.stat().st_size
    assert re.search(
        r"<code>2017-07-01/</code></td><td>1</td><td>" + re.escape(f"{size / 1e6:,.1f} MB"), disk
    )
    # On by default (the shipped free-space floor); nothing of the program's destination is due.
    retention = section(page, "retention")
    assert "kept as the best of their species" in retention and "Off:" not in retention


def test_retention_shows_what_it_would_delete_next(web: Client, store_client, control_target,
                                                   recordings_root):  # fmt: skip
    deployment = store_client.start_deployment("old")
    old = factories.recording(deployment.id, path=str(recordings_root / "old.wav"), status="saved",
                              started_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=50))  # fmt: skip
    (recordings_root / "old.wav").write_bytes(b"RIFF")
    store_client.store_recording(old)
    web.login()
    form = {"csrf": web.csrf("/settings"), "file_management.retention_days": "30",
            "file_management.destination": str(recordings_root)}  # fmt: skip
    assert web.post("/settings", form).status == 303
    retention = section(web.get("/files").text, "retention")
    assert f'href="/recordings/{old.id}"' in retention and "older than 30 days" in retention
    assert (recordings_root / "old.wav").exists()
    assert "on: recordings older than 30 days deleted" in web.get("/").text


def test_the_outbox_by_delivery_state_and_dead_letters_sent_again(
    web: Client, store_client, control_target
):
    """The delivery contract `acoustack messages` uses: a message refused for good is a dead
    letter shown with the server's answer; one that failed for now backs off; a signed-in user
    sends the dead letters again, and they are due at the next run."""
    from acoustack.v1 import store_pb2

    poison = store_client.store_message(schema.Message(content='{"poison": 1}')).message
    later = store_client.store_message(schema.Message(content='{"later": 1}')).message
    due = store_client.store_message(schema.Message(content='{"due": 1}')).message
    for message, refused, answer in ((poison, True, "400 Bad Request: no such species"),
                                     (later, False, "503 Service Unavailable")):  # fmt: skip
        store_client.store_response(
            schema.Response(
                message_id=message.id,
                status=schema.ResponseStatus.FAILED if refused else schema.ResponseStatus.ERROR,
                content=answer,
            ),
            store_pb2.TryOutcome(refused=refused, retry_in_s=600, dead_after_refusals=1),
        )
    web.login()
    page = web.get("/files").text
    outbox = section(page, "outbox")
    assert '<span id="unsent-count">3</span>' in outbox
    for state, count in (("due", 1), ("backing off", 1), ("dead letters", 1), ("sent", 0)):
        assert f'data-state="{state}">{count}</b>' in outbox, state
    assert "backing off until" in outbox and "error: 503 Service Unavailable" in outbox
    dead = section(page, "dead")
    assert "failed: 400 Bad Request: no such species" in dead and "{&#34;poison&#34;: 1}" in dead
    assert "{&#34;due&#34;: 1}" not in dead and str(due.id) not in dead

    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert web.post("/messages/retry", {"csrf": "forged"}).status == 403  # CSRF still holds
    assert store_client.count_messages().dead == 1
    reply = web.post("/messages/retry", {"csrf": csrf})
    assert reply.status == 303 and reply.headers["Location"] == "/files?retried=1#dead"
    counts = store_client.count_messages()
    assert (counts.dead, counts.due, counts.backing_off) == (0, 2, 1)
    after = web.get("/files?retried=1").text
    assert "None: no message was refused for good." in section(after, "dead")
    assert "1 dead letter(s) will be sent at the next messaging run." in section(after, "dead")
