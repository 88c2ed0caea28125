"""HttpMessenger against a real HTTP server in a thread."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from acoustack import schema
from acoustack.errors import InvalidArgumentError
from acoustack.program_config import MessagingConfig
from acoustack_messenger.messengers import HttpMessenger, build_messengers, retry_after_seconds

Status = schema.ResponseStatus


def message() -> schema.Message:
    return schema.Message(content='{"species": "Myotis", "score": 0.93}')


def test_a_2xx_is_success_and_the_server_gets_the_content_and_ids(http_sink):
    messenger = HttpMessenger(
        f"{http_sink.url}/ok", content_type="application/vnd.bats+json", device_id="device-7"
    )
    sent = message()
    response = messenger.send_message(sent)
    assert response.status is Status.SUCCESS
    assert response.content == 'HTTP 201: {"stored": true}'
    [post] = http_sink.posts()
    assert post.path == "/ok"
    assert post.body == sent.content.encode()
    assert post.headers["Content-Type"] == "application/vnd.bats+json"
    assert post.headers["X-Message-Id"] == post.headers["Idempotency-Key"] == str(sent.id)
    assert post.headers["X-Device-Id"] == "device-7"


def test_a_500_is_an_error_with_the_status_and_a_short_body(http_sink):
    response = HttpMessenger(f"{http_sink.url}/fail").send_message(message())
    assert response.status is Status.ERROR
    assert response.content == "HTTP 500 Internal Server Error: <html> database is down </html>"


def test_a_4xx_or_a_redirect_is_a_failure(http_sink):
    response = HttpMessenger(f"{http_sink.url}/reject").send_message(message())
    assert response.status is Status.FAILED
    assert response.content == 'HTTP 400 Bad Request: {"error": "missing field"}'
    # A redirected POST would lose its body: not followed, reported.
    response = HttpMessenger(f"{http_sink.url}/redirect").send_message(message())
    assert response.status is Status.FAILED
    assert response.content.startswith("HTTP 302")
    assert [p.path for p in http_sink.posts()] == ["/reject", "/redirect"]


def test_control_characters_in_an_answer_are_replaced_so_the_store_keeps_it(http_sink):
    response = HttpMessenger(f"{http_sink.url}/garbled").send_message(message())
    assert response.status is Status.FAILED
    assert response.content == "HTTP 400 Bad Request: no\ufffd \ufffd[31mway\ufffd"
    schema.Response.model_validate(response.model_dump())  # what the store checks it with


def test_a_slow_server_is_a_timeout(http_sink):
    messenger = HttpMessenger(f"{http_sink.url}/slow", timeout_s=0.5)
    started = time.monotonic()
    response = messenger.send_message(message())
    assert time.monotonic() - started < 2.5
    assert response.status is Status.TIMEOUT
    assert response.content == f"{http_sink.url}/slow: no answer within 0.5 s"


def test_a_server_that_accepts_and_never_answers_is_a_timeout(silent_server):
    response = HttpMessenger(f"http://127.0.0.1:{silent_server}/", timeout_s=0.5).send_message(
        message()
    )
    assert response.status is Status.TIMEOUT


def test_a_closed_port_is_an_error_and_a_failed_check_naming_it(closed_port):
    messenger = HttpMessenger(f"http://127.0.0.1:{closed_port}/in", timeout_s=2)
    response = messenger.send_message(message())
    assert response.status is Status.ERROR
    assert "Connection refused" in response.content
    verdict = messenger.check()
    assert not verdict.ok
    assert verdict.component == f"http 127.0.0.1:{closed_port}"
    assert f"http://127.0.0.1:{closed_port}/in: ConnectionRefusedError" in verdict.detail
    assert "is messaging.http_url right?" in verdict.detail


def test_the_check_asks_options_and_posts_nothing(http_sink):
    verdict = HttpMessenger(f"{http_sink.url}/ok").check()
    assert verdict.ok
    assert (
        verdict.detail == f"{http_sink.url}/ok: answered OPTIONS with HTTP 204; nothing was posted"
    )
    failing = HttpMessenger(f"{http_sink.url}/fail").check()
    assert not failing.ok and "HTTP 503" in failing.detail
    assert [r.method for r in http_sink.requests] == ["OPTIONS", "OPTIONS"]


def test_build_messengers_follows_the_messaging_section(http_sink):
    assert build_messengers(MessagingConfig(), "d") == []
    [http] = build_messengers(MessagingConfig(http_url=f"{http_sink.url}/ok"), "d")
    assert isinstance(http, HttpMessenger)
    both = build_messengers(
        MessagingConfig(http_url=f"{http_sink.url}/ok", mqtt_host="127.0.0.1"), "d"
    )
    assert [m.name for m in both] == [http.name, "mqtt 127.0.0.1:1883"]


@pytest.mark.parametrize(
    "url", ["ftp://host/x", "bats.example/in", "http://:80/", "http://h:99999/"]
)
def test_a_bad_url_is_refused_naming_the_field(url):
    with pytest.raises(InvalidArgumentError, match=r"^messaging\.http_url: "):
        build_messengers(MessagingConfig(http_url=url), "d")


def test_408_and_429_are_temporary_and_429_brings_its_retry_after(http_sink):
    busy = HttpMessenger(f"{http_sink.url}/busy").send_message(message())
    assert busy.status is Status.ERROR and busy.retry_after_s == 120
    assert busy.content == "HTTP 429 Too Many Requests: slow down (Retry-After 120 s)"
    late = HttpMessenger(f"{http_sink.url}/late").send_message(message())
    assert late.status is Status.ERROR and late.retry_after_s is None
    assert late.content.startswith("HTTP 408 Request Timeout")
    refused = HttpMessenger(f"{http_sink.url}/reject").send_message(message())
    assert refused.status is Status.FAILED and refused.retry_after_s is None


def test_retry_after_is_read_as_seconds_or_an_http_date():
    now = dt.datetime(2026, 6, 1, 21, 0, tzinfo=dt.UTC)
    assert retry_after_seconds("30", now) == 30
    assert retry_after_seconds("Mon, 01 Jun 2026 21:02:00 GMT", now) == 120
    assert retry_after_seconds("Mon, 01 Jun 2026 20:00:00 GMT", now) == 0  # already past
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds("-5", now) is None
    assert retry_after_seconds(None, now) is None


class PostOnly(BaseHTTPRequestHandler):
    """Python's own http.server with do_POST alone: OPTIONS is answered 501 by the library."""

    def log_message(self, *_args) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


class GetOnly(PostOnly):
    """Says, as an Allow header, that it takes no POST."""

    def do_POST(self) -> None:
        self.send_response(405)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_OPTIONS = do_POST


def serve(handler) -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/in"
    server.shutdown()
    server.server_close()


@pytest.fixture
def post_only_server() -> Iterator[str]:
    yield from serve(PostOnly)


@pytest.fixture
def get_only_server() -> Iterator[str]:
    yield from serve(GetOnly)


def test_a_server_without_options_passes_the_check_when_it_takes_posts(post_only_server):
    messenger = HttpMessenger(post_only_server)
    verdict = messenger.check()
    assert verdict.ok, verdict.detail
    assert verdict.detail == (
        f"{post_only_server}: answered OPTIONS with HTTP 501 (it does not do OPTIONS, which "
        "says nothing of POST); nothing was posted"
    )
    assert messenger.send_message(message()).status is Status.SUCCESS


def test_a_server_that_says_it_takes_no_post_fails_the_check(get_only_server):
    verdict = HttpMessenger(get_only_server).check()
    assert not verdict.ok
    assert verdict.detail == (
        f"{get_only_server}: the server does not take POST here (HTTP 405, Allow: GET, HEAD): "
        "check messaging.http_url"
    )
