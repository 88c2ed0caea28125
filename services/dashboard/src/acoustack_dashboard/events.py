"""The live feed: storage's and the scheduler's domain events from the `acoustack.events` exchange
(recording.stored, model_output.stored, recording.filed, message.sent, deployment.*), handed to
every open page's server-sent event stream.

The dashboard's queue is its own and lives only while it is connected (exclusive, auto-deleted):
events missed while it was away cost nothing, since each (re)connection tells the pages to
reload their state from storage ("resync")."""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
from typing import Any

import pika
import pika.exceptions

from acoustack.names import EVENTS_EXCHANGE

log = logging.getLogger("acoustack_dashboard")

RESYNC = "resync"


class LiveFeed:
    def __init__(self, broker_url: str, *, retry_s: float = 2.0, per_page: int = 100) -> None:
        self.broker_url = broker_url
        self.retry_s = retry_s
        self.per_page = per_page
        self.connected = threading.Event()
        self._pages: set[queue.Queue[dict[str, Any]]] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connection: pika.BlockingConnection | None = None
        self._channel: Any = None
        self._thread = threading.Thread(target=self._run, name="live-feed", daemon=True)

    def start(self) -> LiveFeed:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        connection, channel = self._connection, self._channel
        if connection is not None and channel is not None:
            with contextlib.suppress(Exception):  # already closed
                connection.add_callback_threadsafe(channel.stop_consuming)
        self._thread.join(5)

    def subscribe(self) -> queue.Queue[dict[str, Any]]:
        page: queue.Queue[dict[str, Any]] = queue.Queue(self.per_page)
        with self._lock:
            self._pages.add(page)
        return page

    def unsubscribe(self, page: queue.Queue[dict[str, Any]]) -> None:
        with self._lock:
            self._pages.discard(page)

    def broadcast(self, event: dict[str, Any]) -> None:
        with self._lock:
            pages = list(self._pages)
        for page in pages:
            try:
                page.put_nowait(event)
            except queue.Full:  # a page that stopped reading: it resyncs when it reads again
                with page.mutex:
                    page.queue.clear()
                page.put_nowait({"event": RESYNC})

    def _on_message(self, channel, method, properties, body: bytes) -> None:
        try:
            event = json.loads(body)
        except ValueError:
            log.warning("live feed: an event on %s is not JSON; ignored", method.routing_key)
            return
        if isinstance(event, dict):
            event.setdefault("event", method.routing_key)
            self.broadcast(event)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._connection = pika.BlockingConnection(pika.URLParameters(self.broker_url))
                channel = self._channel = self._connection.channel()
                channel.exchange_declare(EVENTS_EXCHANGE, exchange_type="topic", durable=True)
                name = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
                channel.queue_bind(name, EVENTS_EXCHANGE, routing_key="#")
                channel.basic_consume(name, self._on_message, auto_ack=True)
                self.connected.set()
                log.info("live feed: following %s", EVENTS_EXCHANGE)
                self.broadcast({"event": RESYNC})
                channel.start_consuming()
                self._connection.close()
            except (pika.exceptions.AMQPError, OSError) as exc:
                if self._stopping.is_set():
                    return
                log.warning("live feed: broker away (%r); retrying in %.0f s", exc, self.retry_s)
            finally:
                self.connected.clear()
            self._stopping.wait(self.retry_s)
