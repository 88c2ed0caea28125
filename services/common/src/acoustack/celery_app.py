"""The one Celery app definition every worker and the scheduler use.

JSON only (never pickle: a message is data, not code); a task is acknowledged after it ran, so a
worker that dies mid-task leaves it to be delivered again (the tasks are idempotent); one message
prefetched at a time, so a slow detection does not hold others hostage; the broker is retried
forever with backoff, since a device's RabbitMQ may come up after its workers.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from celery import Celery
from kombu import Queue as KombuQueue

from acoustack import profiling  # noqa: F401 - connects the profile signal handlers in every worker
from acoustack.errors import InvalidArgumentError
from acoustack.names import (
    TASK_ARGUMENTS,
    TASK_QUEUES,
    TASK_TIME_LIMITS,
    Queue,
    Task,
    TaskArguments,
)

log = logging.getLogger(__name__)


def create_app(broker_url: str, *, main: str = "acoustack") -> Celery:
    app = Celery(main, broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=Queue.DEFAULT.value,
        task_queues=[KombuQueue(q.value, routing_key=q.value) for q in Queue],
        task_routes={task.value: {"queue": queue.value} for task, queue in TASK_QUEUES.items()},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        # Publisher confirms: a task is sent only when the broker says it has it.
        broker_transport_options={"confirm_publish": True},
        enable_utc=True,
        timezone="UTC",
        worker_hijack_root_logger=False,
    )
    return app


# Tasks a worker process refused for unusable arguments, by task name (logged as they come).
REJECTED_TASKS: Counter[str] = Counter()
_rejected_lock = threading.Lock()


def register_task(app: Celery, task: Task, run: Callable[[Any, Any], Any], **options: Any) -> Any:
    """Add ``task`` to ``app``, bound to it only, with the contract's time limits. ``run(request,
    arguments)`` gets the Celery request and the arguments parsed with the task's model.

    Arguments that do not parse are logged with the field at fault and counted, and the task ends
    (it is acknowledged): sent again, they would fail the same way for ever."""
    arguments_model = TASK_ARGUMENTS[task]
    limits = TASK_TIME_LIMITS[task]

    @app.task(
        name=task.value,
        bind=True,
        shared=False,
        soft_time_limit=limits.soft_s,
        time_limit=limits.hard_s,
        **options,
    )
    def celery_task(self, *args: Any, **kwargs: Any) -> Any:
        try:
            arguments = arguments_model.parse(args, kwargs)
        except InvalidArgumentError as exc:
            with _rejected_lock:
                REJECTED_TASKS[task.value] += 1
                count = REJECTED_TASKS[task.value]
            log.error(
                "%s %s refused (%d so far in this process): unusable arguments: %s",
                task.value, self.request.id, count, exc,
            )  # fmt: skip
            return {"outcome": "rejected", "reason": f"arguments: {exc}"}
        return run(self, arguments)

    return celery_task


def send(app: Celery, arguments: TaskArguments, **options: Any) -> Any:
    """Send the task these arguments are for (its queue comes from the routes)."""
    return app.send_task(arguments.task.value, kwargs=arguments.as_kwargs(), **options)


def queue_stats(
    app: Celery, queues: Sequence[str] = tuple(q.value for q in Queue)
) -> dict[str, tuple[int, int]]:
    """(messages waiting, consumers) of each queue (declared if missing, so a fresh broker reads 0).

    Each worker process of ours consumes with prefetch 1, so consumers are the workers on a queue.
    """
    stats = {}
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        for name in queues:
            app.amqp.queues[name].bind(channel).declare()
            declared = channel.queue_declare(name, passive=True)
            stats[name] = (declared.message_count, declared.consumer_count)
    return stats


def queue_depths(
    app: Celery, queues: Sequence[str] = tuple(q.value for q in Queue)
) -> dict[str, int]:
    """Messages waiting in each queue."""
    return {name: waiting for name, (waiting, _) in queue_stats(app, queues).items()}
