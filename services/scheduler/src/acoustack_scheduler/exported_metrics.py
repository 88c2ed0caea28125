"""What the scheduler tells Prometheus, read from RabbitMQ at each scrape: the tasks waiting in
each queue and the workers taking them (a queue with tasks and no worker is a stopped service)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from acoustack import prometheus


def read_metrics(queue_stats: Callable[[], Mapping[str, tuple[int, int]]]) -> Iterable:
    stats = queue_stats()
    yield prometheus.gauge(
        prometheus.QUEUE_DEPTH,
        "Tasks waiting in each queue",
        {name: waiting for name, (waiting, _) in stats.items()},
        "queue",
    )
    yield prometheus.gauge(
        "acoustack_queue_workers",
        "Workers consuming each queue",
        {name: workers for name, (_, workers) in stats.items()},
        "queue",
    )


def collector(queue_stats: Callable[[], Mapping[str, tuple[int, int]]]):
    return prometheus.ScrapeCollector(lambda: read_metrics(queue_stats), "rabbitmq")
