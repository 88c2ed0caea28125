"""The one Celery app definition every worker and the scheduler use.

JSON only (never pickle: a message is data, not code); a task is acknowledged after it ran, so a
worker that dies mid-task leaves it to be delivered again (the tasks are idempotent); one message
prefetched at a time, so a slow detection does not hold others hostage; the broker is retried
forever with backoff, since a device's RabbitMQ may come up after its workers.
"""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery
from kombu import Queue as KombuQueue

from acoustack import profiling  # noqa: F401 - connects the profile signal handlers in every worker
from acoustack.names import TASK_QUEUES, Queue


def create_app(
    broker_url: str,
    *,
    main: str = "acoustack",
    task_soft_time_limit_s: float | None = None,
    task_time_limit_s: float | None = None,
) -> Celery:
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
        task_soft_time_limit=task_soft_time_limit_s,
        task_time_limit=task_time_limit_s,
        enable_utc=True,
        timezone="UTC",
        worker_hijack_root_logger=False,
    )
    return app


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
