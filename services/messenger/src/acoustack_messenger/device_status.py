"""What the heartbeat says of the device: the facts gathered from storage and RabbitMQ, judged by
``acoustack.device_health``, as the heartbeat's status and a few more metrics.

A fact that cannot be gathered is itself reported ("storage unreachable"), and the heartbeat still
goes: a heartbeat that waits for everything to work says nothing when it matters.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from celery import Celery

from acoustack import convert, device_health, schema
from acoustack.celery_app import queue_stats
from acoustack.clients import StoreClient
from acoustack.errors import AcoustackError
from acoustack.program_config import RecordingConfig, read_section
from acoustack.v1 import store_pb2 as spb
from acoustack.v1 import types_pb2 as pb

log = logging.getLogger(__name__)

RECORDED = [pb.RECORDING_STATUS_TEMPORARY, pb.RECORDING_STATUS_SAVED, pb.RECORDING_STATUS_DELETED]


def gather(
    store: StoreClient, app: Celery | None, now: dt.datetime
) -> tuple[device_health.DeviceFacts, list[str]]:
    """The facts, and what could not be found out (each a problem in itself)."""
    unknown: list[str] = []
    deployment = last_recording_at = None
    failed: list = []
    try:
        current = store.current_deployment()
        deployment = convert.deployment_from_proto(current) if current else None
        newest = store.list_recordings(
            statuses=RECORDED, order=spb.SORT_ORDER_NEWEST_FIRST, limit=1
        )
        if newest:
            last_recording_at = newest[0].recording.started_at.ToDatetime(tzinfo=dt.UTC)
        failed = store.list_recordings(
            statuses=[pb.RECORDING_STATUS_FAILED],
            started_from=now - dt.timedelta(hours=1),
            order=spb.SORT_ORDER_NEWEST_FIRST,
            limit=1000,
        )
    except AcoustackError as exc:
        unknown.append(f"storage unreachable ({type(exc).__name__})")
    queues: dict[str, device_health.QueueState] = {}
    if app is not None:
        try:
            queues = {
                name: device_health.QueueState(waiting, consumers)
                for name, (waiting, consumers) in queue_stats(app).items()
            }
        except Exception as exc:  # kombu raises many kinds; any means the same here
            log.warning("heartbeat: queue depths unknown: %s", exc)
            unknown.append("RabbitMQ unreachable")
    facts = device_health.DeviceFacts(
        now=now,
        deployment=deployment,
        last_recording_at=last_recording_at,
        failed_last_hour=len(failed),
        last_failure_reason=failed[0].recording.failure_reason if failed else "",
        queues=queues,
    )
    return facts, unknown


def assess(
    store: StoreClient,
    app: Celery | None,
    program_config: Mapping[str, Any] | None,
    now: dt.datetime | None = None,
) -> tuple[str, list[Callable[[], schema.Metric]]]:
    """The heartbeat's status, and metrics for what was found (failures, waiting tasks)."""
    now = now or dt.datetime.now(dt.UTC)
    facts, unknown = gather(store, app, now)
    try:
        recording = read_section(program_config, "recording", RecordingConfig)
    except AcoustackError as exc:
        recording = None
        unknown.append(f"the recording section is unusable ({exc})")
    found = [*unknown, *device_health.problems(facts, recording)]
    extra = [
        _metric("failed_recordings_last_hour", facts.failed_last_hour, "count"),
        *(
            _metric(f"queue_{name}_waiting", state.waiting, "count")
            for name, state in sorted(facts.queues.items())
        ),
    ]
    return device_health.status(found), extra


def _metric(name: str, value: float, unit: str) -> Callable[[], schema.Metric]:
    def collect() -> schema.Metric:
        return schema.Metric(name=name, value=float(value), unit=unit)

    collect.__name__ = name
    return collect


def with_status(status: str) -> Callable[[schema.Heartbeat], str]:
    """A heartbeat serializer (JSON, as the template's) that carries this status."""

    def serialize(heartbeat: schema.Heartbeat) -> str:
        stamped = heartbeat.model_copy(update={"status": status})
        return json.dumps(stamped.model_dump(mode="json"), separators=(",", ":"))

    return serialize
