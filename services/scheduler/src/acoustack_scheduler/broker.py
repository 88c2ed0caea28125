"""What the scheduler does through RabbitMQ: queue depths, deployment events, flushing work in flight."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence

from celery import Celery
from kombu import Exchange, Producer

from acoustack import schema
from acoustack.clients import StoreClient
from acoustack.names import EVENTS_EXCHANGE, Queue, Task
from acoustack.v1 import types_pb2 as pb
from acoustack_scheduler.lifecycle import Flusher, FlushReport

log = logging.getLogger(__name__)

EVENTS = Exchange(EVENTS_EXCHANGE, type="topic", durable=True)


def queue_depths(
    app: Celery, queues: Sequence[str] = tuple(q.value for q in Queue)
) -> dict[str, int]:
    """Messages waiting in each queue (declared if missing, so a fresh broker reads 0)."""
    depths = {}
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        for name in queues:
            app.amqp.queues[name].bind(channel).declare()
            depths[name] = channel.queue_declare(name, passive=True).message_count
    return depths


class EventAnnouncer:
    """Publishes deployment events on the topic exchange; the broker confirms each one."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def __call__(self, event: str, deployment: schema.Deployment) -> None:
        body = {"event": event, "deployment": deployment.model_dump(mode="json")}
        with self.app.connection_for_write() as connection:
            producer = Producer(connection.default_channel, exchange=EVENTS)
            producer.publish(
                json.dumps(body),
                routing_key=event,
                content_type="application/json",
                declare=[EVENTS],
                retry=True,
                retry_policy={
                    "max_retries": 3,
                    "interval_start": 0.5,
                    "interval_step": 1,
                    "interval_max": 2,
                },
            )


class QueueFlusher(Flusher):
    """Before a deployment ends: let detection finish, manage the files, send the outbox."""

    def __init__(
        self,
        app: Celery,
        store: StoreClient,
        *,
        required_models: Sequence[str] = (),
        every_recording_detected: bool = False,
        settle_s: float = 0.0,
        poll_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.store = store
        self.required_models = set(required_models)
        # Without model names: a program that detects wants at least one output per recording.
        self.every_recording_detected = every_recording_detected
        # Time for a recording already under way to be written and registered (its duration + margin).
        self.settle_s = settle_s
        self.poll_s = poll_s
        self.clock = clock

    def _wait(self, condition: Callable[[], str | None], deadline: float) -> str | None:
        """Poll until ``condition`` returns None (done); what it returned last if time runs out."""
        while True:
            pending = condition()
            if pending is None or self.clock() >= deadline:
                return pending
            time.sleep(self.poll_s)

    def _undetected(self, deployment: schema.Deployment) -> str | None:
        waiting = queue_depths(self.app, [Queue.DETECTION.value])[Queue.DETECTION.value]
        if waiting:
            return f"{waiting} detection task(s) still queued"
        if not self.required_models and not self.every_recording_detected:
            return None
        entries = self.store.list_recordings(
            deployment_id=str(deployment.id),
            statuses=[pb.RECORDING_STATUS_TEMPORARY],
            include_model_outputs=True,
            limit=10_000,
        )
        missing = [
            e
            for e in entries
            if not self.required_models <= {o.model_name for o in e.model_outputs}
        ]
        return (
            f"{len(missing)} recording(s) not yet processed by {sorted(self.required_models)}"
            if missing
            else None
        )

    def _drained(self) -> str | None:
        waiting = queue_depths(self.app, [Queue.DEFAULT.value])[Queue.DEFAULT.value]
        return f"{waiting} task(s) still queued" if waiting else None

    def _outbox_empty(self) -> str | None:
        unsent = self.store.get_unsent_messages(limit=10_000)
        return f"{len(unsent)} message(s) unsent" if unsent else None

    def flush(self, deployment: schema.Deployment, timeout_s: float) -> FlushReport:
        deadline = self.clock() + timeout_s
        report = FlushReport()
        if self.settle_s:
            time.sleep(min(self.settle_s, timeout_s))
        left = self._wait(lambda: self._undetected(deployment), deadline)
        report.steps.append("detection: " + (left or "done"))
        if left:
            report.left.append(f"detection: {left}")
        self.app.send_task(Task.MANAGE_FILES.value)
        left = self._wait(self._drained, deadline)
        report.steps.append("file management: " + (left or "done"))
        if left:
            report.left.append(f"file management: {left}")
        self.app.send_task(Task.SEND_MESSAGES.value)
        left = self._wait(self._outbox_empty, deadline)
        report.steps.append("messaging: " + (left or "done"))
        if left:
            report.left.append(f"messaging: {left}")
        return report
