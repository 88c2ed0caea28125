"""The live feed: storage's domain events reach an open page's server-sent event stream through a
real RabbitMQ, starting with a "resync" (the page reloads its state), and the overview's changing
part is served on its own for the page to swap in."""

from __future__ import annotations

import http.client
import json
import time

from acoustack.testing import factories
from acoustack_dashboard.testing import Client


def read_events(response: http.client.HTTPResponse, wanted: set[str], timeout_s: float = 15.0):
    """Events from an SSE stream until every ``wanted`` one has come."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout_s
    while wanted - {e.get("event") for e in seen}:
        assert time.monotonic() < deadline, f"waited for {wanted}, saw {seen}"
        line = response.fp.readline().decode().strip()
        if line.startswith("data: "):
            seen.append(json.loads(line[6:]))
    return seen


def open_stream(web: Client) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=20)
    cookie = "; ".join(f"{k}={v}" for k, v in web.cookies.items())
    connection.request("GET", "/events", headers={"Cookie": cookie})
    response = connection.getresponse()
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    return response


def test_storage_events_reach_the_page_stream(web: Client, dashboard, eventing_storage_target,
                                              store_client):  # fmt: skip
    assert dashboard.feed.connected.wait(10)
    web.login()
    stream = open_stream(web)
    deployment = store_client.start_deployment("live")
    recording = factories.recording(deployment.id)
    store_client.store_recording(recording)
    store_client.store_model_output(factories.model_output(recording.id, 2))
    events = read_events(stream, {"recording.stored", "model_output.stored"})
    stored = next(e for e in events if e["event"] == "recording.stored")
    assert stored["recording_id"] == str(recording.id)
    output = next(e for e in events if e["event"] == "model_output.stored")
    assert output["detections"] == 2
    stream.close()


def test_a_new_stream_starts_with_a_resync_when_the_feed_reconnects(web: Client, dashboard,
                                                                   eventing_storage_target):  # fmt: skip
    assert dashboard.feed.connected.wait(10)
    web.login()
    stream = open_stream(web)
    # The feed's connection drops (a broker restart, say): it reconnects and tells every page.
    dashboard.feed._connection.add_callback_threadsafe(dashboard.feed._connection.close)
    read_events(stream, {"resync"})
    stream.close()


def test_the_event_stream_needs_a_login(web: Client, dashboard, eventing_storage_target):
    assert web.get("/events").status == 303
