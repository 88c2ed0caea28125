"""The HTTP side: the messenger's POST (stored once by its Idempotency-Key), and the fleet read
as JSON (devices, detections by device/species/time/score, species over time, alarms, rejected).

A POST is answered after its message is committed: 200 (stored now, or already stored), 422
with the reason for a payload the hub cannot read (stored as rejected; the device's messenger
counts it as refused for good), 413 for one too large, 503 while the database is away.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from acoustack_hub.ingest import Ingest
from acoustack_hub.payloads import HEAD_BYTES, Accepted, Incoming, Rejected
from acoustack_hub.store import HubStore

log = logging.getLogger(__name__)

COMMIT_WAIT_S = 30.0
MAX_LIMIT = 10000


class BadQuery(ValueError):
    pass


def _time(params: dict[str, str], name: str) -> dt.datetime | None:
    if name not in params:
        return None
    try:
        value = dt.datetime.fromisoformat(params[name].replace("Z", "+00:00"))
    except ValueError:
        raise BadQuery(f"{name}: {params[name]!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise BadQuery(f"{name}: {params[name]!r} has no time zone (add Z for UTC)")
    return value


def _number(params: dict[str, str], name: str, kind: type, low: float, high: float) -> Any:
    if name not in params:
        return None
    try:
        value = kind(params[name])
    except ValueError:
        raise BadQuery(f"{name}: {params[name]!r} is not a number") from None
    if not low <= value <= high:
        raise BadQuery(f"{name}: {value} is outside {low}..{high}")
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


class HubHttp:
    def __init__(self, ingest: Ingest, store: HubStore, host: str, port: int) -> None:
        self.ingest, self.store = ingest, store
        handler = type("Handler", (_Handler,), {"hub": self})
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def query(self, path: str, params: dict[str, str]) -> Any:
        if path == "/devices":
            return self.store.devices()
        if path.startswith("/devices/"):
            device = self.store.device(urllib.parse.unquote(path.removeprefix("/devices/")))
            if device is None:
                raise LookupError("no such device")
            return device
        if path == "/detections":
            return self.store.detections(
                device_id=params.get("device"),
                species=params.get("species"),
                since=_time(params, "since"),
                until=_time(params, "until"),
                min_score=_number(params, "min_score", float, 0.0, 1.0),
                limit=_number(params, "limit", int, 1, MAX_LIMIT) or 100,
            )
        if path == "/species":
            bucket = params.get("bucket", "day")
            if bucket not in ("hour", "day"):
                raise BadQuery(f"bucket: {bucket!r} is neither hour nor day")
            return self.store.species_over_time(bucket, _time(params, "since"))
        if path == "/alarms":
            return self.store.alarms(open_only=params.get("open") in ("1", "true"))
        if path == "/rejected":
            return self.store.rejected(_number(params, "limit", int, 1, MAX_LIMIT) or 100)
        raise LookupError(f"no page {path}")


class _Handler(BaseHTTPRequestHandler):
    hub: HubHttp
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # one line per request is noise
        log.debug("%s %s", self.address_string(), format % args)

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body, default=_json_default).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 503:
            self.send_header("Retry-After", "30")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/healthz":
            ok = self.hub.store.ping()
            self._answer(200 if ok else 503, {"database": "ok" if ok else "unreachable"})
            return
        params = dict(urllib.parse.parse_qsl(url.query))
        try:
            self._answer(200, self.hub.query(url.path, params))
        except BadQuery as exc:
            self._answer(400, {"error": str(exc)})
        except LookupError as exc:
            self._answer(404, {"error": str(exc)})

    def _body(self, limit: int) -> tuple[bytes, int] | None:
        """The body and its size; of one too large only its head (the rest is read away, so
        the connection stays usable)."""
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return None
        if length <= limit:
            return self.rfile.read(length), length
        head = self.rfile.read(HEAD_BYTES)
        left = length - len(head)
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            left = left - len(chunk) if chunk else 0
        return head, length

    def do_POST(self) -> None:
        if urllib.parse.urlsplit(self.path).path != "/messages":
            self._answer(404, {"error": "POST messages to /messages"})
            return
        body = self._body(self.hub.ingest.max_message_bytes)
        if body is None:
            self._answer(411, {"error": "a Content-Length is required"})
            return
        done = threading.Event()
        outcome: list[Accepted | Rejected] = []

        def stored(item: Accepted | Rejected) -> None:
            outcome.append(item)
            done.set()

        self.hub.ingest.submit(
            Incoming(
                raw=body[0],
                size=body[1],
                message_id=self.headers.get("Idempotency-Key") or self.headers.get("X-Message-Id"),
                device_id=self.headers.get("X-Device-Id"),
                via="http",
                received_at=dt.datetime.now(dt.UTC),
                user_agent=self.headers.get("User-Agent"),
            ),
            stored,
        )
        if not done.wait(COMMIT_WAIT_S):
            self._answer(503, {"error": "the hub's database is not answering; send it again"})
            return
        item = outcome[0]
        if isinstance(item, Rejected):
            status = 413 if item.reason.startswith("too large") else 422
            self._answer(status, {"error": item.reason})
            return
        self._answer(200, {"id": str(item.id), "kind": item.kind})
