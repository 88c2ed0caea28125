"""What the scheduler does through RabbitMQ: queue depths, deployment events, flushing work in flight."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence

from celery import Celery
from kombu import Exchange, Producer

from acoustack import schema
from acoustack.celery_app import queue_depths, queue_stats
from acoustack.clients import StoreClient
from acoustack.names import EVENTS_EXCHANGE, Queue, Task
from acoustack.v1 import types_pb2 as pb
from acoustack_scheduler.detection_sweep import DetectionSweep
from acoustack_scheduler.lifecycle import Flusher, FlushReport

log = logging.getLogger(__name__)

__all__ = ["EVENTS", "EventAnnouncer", "QueueFlusher", "purge_queue", "queue_depths", "queue_stats"]

EVENTS = Exchange(EVENTS_EXCHANGE, type="topic", durable=True)


def purge_queue(app: Celery, queue: Queue) -> int:
    """Drop the tasks waiting in ``queue`` (not one a worker has taken); how many were dropped."""
    with app.connection_for_write() as connection:
        return app.amqp.queues[queue.value].bind(connection.default_channel).purge() or 0


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
        settle_s: float | Callable[[], float] = 0.0,
        send_arguments: Callable[[Task], dict] = lambda task: {},
        poll_s: float = 0.5,
        resend_s: float = 5.0,
        can_send: Callable[[], bool] = lambda: True,
        detection_sweep: Callable[[], DetectionSweep] | None = None,
        clock: Callable[[], float] = time.monotonic,
        processed: Callable[[set[str]], bool] = bool,
    ) -> None:
        self.app = app
        # Without model names: whether a recording with these models' outputs is processed.
        self.processed = processed
        # A new sweep for each flush, with a short wait: a recording whose detect was lost would
        # otherwise hold the stop until its timeout.
        self.detection_sweep = detection_sweep
        self.store = store
        self.required_models = set(required_models)
        # Without model names: a program that detects wants at least one output per recording.
        self.every_recording_detected = every_recording_detected
        # Time for a recording already under way to be written and registered (its duration + margin;
        # a callable reads the duration configured now).
        self.settle_s = settle_s if callable(settle_s) else (lambda: settle_s)
        # The program's configuration and time limits go with each task, as the beat sends them.
        self.send_arguments = send_arguments
        self.poll_s = poll_s
        self.clock = clock
        self.resend_s = resend_s
        # False when the program sends nowhere: the outbox then keeps its messages, and the flush
        # does not wait for a send that cannot happen.
        self.can_send = can_send
        self._last_sent: dict[Task, float] = {}

    def _wait(self, condition: Callable[[], str | None], deadline: float) -> str | None:
        """Poll until ``condition`` returns None (done); what it returned last if time runs out."""
        while True:
            pending = condition()
            if pending is None or self.clock() >= deadline:
                return pending
            time.sleep(self.poll_s)

    def _undetected(
        self, deployment: schema.Deployment, sweep: DetectionSweep | None = None
    ) -> str | None:
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
        # Named models: each must have processed the recording. No names: any output will do.
        missing = [
            e
            for e in entries
            if not (
                self.required_models <= {o.model_name for o in e.model_outputs}
                if self.required_models
                else self.processed({o.model_name for o in e.model_outputs})
            )
        ]
        if not missing:
            return None
        if sweep is not None:
            sweep.run()
        if self.required_models:
            return (
                f"{len(missing)} recording(s) not yet processed by {sorted(self.required_models)}"
            )
        return f"{len(missing)} recording(s) without a model output (of every required model)"

    def _drained(self, queue: Queue) -> str | None:
        waiting = queue_depths(self.app, [queue.value])[queue.value]
        return f"{waiting} task(s) still queued" if waiting else None

    def _resend(self, task: Task, after_s: float | None) -> None:
        if (
            after_s is not None
            and self.clock() - self._last_sent.get(task, float("-inf")) >= after_s
        ):
            self._send(task)

    def _files_managed(
        self, deployment: schema.Deployment, resend_after_s: float | None = None
    ) -> str | None:
        """None once no recording of the deployment is temporary. A drained queue is not enough:
        the worker may still be running the task it took. With ``resend_after_s``: when the queue
        is empty but recordings are still temporary (one registered or detected after the run
        looked), ask for another run, at most that often."""
        queued = self._drained(Queue.FILES)
        if queued:
            return queued
        temporary = self.store.list_recordings(
            deployment_id=str(deployment.id),
            statuses=[pb.RECORDING_STATUS_TEMPORARY],
            limit=10_000,
        )
        if not temporary:
            return None
        self._resend(Task.MANAGE_FILES, resend_after_s)
        return f"{len(temporary)} recording(s) still temporary"

    def _outbox_empty(self, resend_after_s: float | None = None) -> str | None:
        """None once nothing waits to be sent. With ``resend_after_s``: when the queue is empty but
        messages are still unsent (a send that failed, a message stored after the last run read
        the outbox), ask for another run, at most that often, rather than wait for the schedule."""
        queued = self._drained(Queue.DEFAULT)
        if queued:
            return queued
        # Only due messages are waited for: one backing off after a failed try is not tried
        # again before its time, however often a run is asked for.
        due = self.store.count_messages().due
        if not due:
            return None
        self._resend(Task.SEND_MESSAGES, resend_after_s)
        return f"{due} message(s) unsent"

    def _outbox_waiting(self) -> str | None:
        counts = self.store.count_messages()
        parts = []
        if counts.backing_off:
            parts.append(f"{counts.backing_off} message(s) backing off after failed tries")
        if counts.dead:
            parts.append(f"{counts.dead} dead letter(s)")
        return ", ".join(parts) + " (acoustack messages)" if parts else None

    def _send(self, task: Task) -> None:
        self.app.send_task(task.value, **self.send_arguments(task))
        self._last_sent[task] = self.clock()

    def flush(self, deployment: schema.Deployment, timeout_s: float) -> FlushReport:
        deadline = self.clock() + timeout_s
        report = FlushReport()
        settle_s = self.settle_s()
        if settle_s:
            time.sleep(min(settle_s, timeout_s))
        sweep = self.detection_sweep() if self.detection_sweep is not None else None
        left = self._wait(lambda: self._undetected(deployment, sweep), deadline)
        report.steps.append("detection: " + (left or "done"))
        if left:
            report.left.append(f"detection: {left}")
        self._send(Task.MANAGE_FILES)
        left = self._wait(lambda: self._files_managed(deployment, self.resend_s), deadline)
        report.steps.append("file management: " + (left or "done"))
        if left:
            report.left.append(f"file management: {left}")
        if not self.can_send():
            counts = self.store.count_messages()
            unsent = counts.due + counts.backing_off + counts.dead
            report.steps.append(
                f"messaging: no destination configured; {unsent} message(s) stay in the outbox"
            )
            return report
        self._send(Task.SEND_MESSAGES)
        left = self._wait(lambda: self._outbox_empty(self.resend_s), deadline)
        report.steps.append("messaging: " + (left or "done"))
        if left:
            report.left.append(f"messaging: {left}")
        elif waiting := self._outbox_waiting():
            report.left.append(f"messaging: {waiting}")
        return report
