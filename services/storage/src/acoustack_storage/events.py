"""Domain events on the `acoustack.events` topic exchange, for whoever wants to follow the device
live (the dashboard): `recording.stored`, `model_output.stored`, `recording.filed` and
`message.sent`, each a small JSON document published after its transaction commits.

Publishing never holds up or fails a write: events wait in a bounded queue that one thread sends
with publisher confirms (pika), reconnecting after an outage. An event that cannot be sent is
dropped with a warning; a subscriber that missed some reloads its state from the store.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from typing import Any

import pika
import pika.exceptions

from acoustack.names import EVENTS_EXCHANGE

log = logging.getLogger("acoustack_storage")

RECORDING_STORED = "recording.stored"
MODEL_OUTPUT_STORED = "model_output.stored"
RECORDING_FILED = "recording.filed"
MESSAGE_SENT = "message.sent"


def no_events(event: str, body: dict[str, Any]) -> None:
    """Where events go when no broker is configured."""


class EventPublisher:
    def __init__(self, broker_url: str, *, max_waiting: int = 1000, retry_s: float = 2.0) -> None:
        self.broker_url = broker_url
        self.retry_s = retry_s
        self._waiting: queue.Queue[tuple[str, bytes] | None] = queue.Queue(max_waiting)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._dropped = 0
        self.published = 0

    def __call__(self, event: str, body: dict[str, Any]) -> None:
        self._start()
        payload = json.dumps({"event": event, **body}, default=str).encode()
        try:
            self._waiting.put_nowait((event, payload))
        except queue.Full:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                log.warning("events: %d dropped (the broker is away)", self._dropped)

    def _start(self) -> None:
        # Started at the first event, in the process that publishes (a forked worker included).
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="events", daemon=True)
                self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is waiting (for at most ``timeout_s``), then stop."""
        if self._thread is not None and self._thread.is_alive():
            try:
                self._waiting.put(None, timeout=timeout_s)
            except queue.Full:
                return
            self._thread.join(timeout_s)

    def _run(self) -> None:
        pending: tuple[str, bytes] | None = None
        while True:
            try:
                connection = pika.BlockingConnection(pika.URLParameters(self.broker_url))
            except pika.exceptions.AMQPError as exc:
                log.warning(
                    "events: broker unreachable (%r); retrying in %.1f s", exc, self.retry_s
                )
                time.sleep(self.retry_s)
                continue
            try:
                channel = connection.channel()
                channel.exchange_declare(EVENTS_EXCHANGE, exchange_type="topic", durable=True)
                channel.confirm_delivery()
                while True:
                    item = pending or self._waiting.get()
                    if item is None:
                        connection.close()
                        return
                    pending = item
                    event, payload = item
                    # With confirms on, this returns once the broker has the event (or raises).
                    channel.basic_publish(
                        EVENTS_EXCHANGE,
                        event,
                        payload,
                        pika.BasicProperties(content_type="application/json", delivery_mode=2),
                    )
                    pending = None
                    self.published += 1
            except pika.exceptions.AMQPError as exc:
                log.warning("events: connection lost (%s); reconnecting", exc)
                with contextlib.suppress(pika.exceptions.AMQPError):
                    connection.close()
                time.sleep(self.retry_s)
