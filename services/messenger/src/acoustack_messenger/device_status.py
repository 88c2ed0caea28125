"""What the heartbeat says of the device: the facts (``acoustack.device_facts``) judged by
``acoustack.device_health``, as the heartbeat's status and a few more metrics.

A fact that cannot be gathered is itself reported ("storage unreachable"), and the heartbeat still
goes: a heartbeat that waits for everything to work says nothing when it matters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from celery import Celery

from acoustack import schema
from acoustack.celery_app import queue_stats
from acoustack.clients import StoreClient
from acoustack.device_facts import judge
from acoustack.tasks import heartbeat_to_json


def assess(
    store: StoreClient,
    app: Celery | None,
    program_config: Mapping[str, Any] | None,
    now: dt.datetime | None = None,
) -> tuple[str, list[Callable[[], schema.Metric]]]:
    """The heartbeat's status, and metrics for what was found (failures, waiting tasks)."""
    status, facts = judge(
        store, None if app is None else partial(queue_stats, app), program_config, now
    )
    extra = [
        _metric("failed_recordings_last_hour", facts.failed_last_hour, "count"),
        *(
            _metric(f"queue_{name}_waiting", state.waiting, "count")
            for name, state in sorted(facts.queues.items())
        ),
    ]
    return status, extra


def _metric(name: str, value: float, unit: str) -> Callable[[], schema.Metric]:
    def collect() -> schema.Metric:
        return schema.Metric(name=name, value=float(value), unit=unit)

    collect.__name__ = name
    return collect


def with_status(status: str) -> Callable[[schema.Heartbeat], str]:
    """A heartbeat serializer (JSON, as the template's) that carries this status."""

    def serialize(heartbeat: schema.Heartbeat) -> str:
        return heartbeat_to_json(heartbeat.model_copy(update={"status": status}))

    return serialize
