"""The facts ``acoustack.device_health`` judges, gathered from storage and RabbitMQ: by the
messenger for each heartbeat, and by the scheduler for `acoustack status`.

A fact that cannot be gathered is returned as a problem in itself ("storage unreachable").
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any

from acoustack import convert, device_health
from acoustack.clients import StoreClient
from acoustack.errors import AcoustackError
from acoustack.metrics import newest_recording_start
from acoustack.program_config import RecordingConfig, read_section
from acoustack.v1 import store_pb2 as spb
from acoustack.v1 import types_pb2 as pb

log = logging.getLogger(__name__)


def gather(
    store: StoreClient,
    queue_stats: Callable[[], Mapping[str, tuple[int, int]]] | None,
    now: dt.datetime,
) -> tuple[device_health.DeviceFacts, list[str]]:
    """The facts, and what could not be found out (each a problem in itself).

    ``queue_stats`` gives (waiting, consumers) per queue; None leaves the queues out."""
    unknown: list[str] = []
    deployment = last_recording_at = None
    failed: list = []
    retention = None
    try:
        current = store.current_deployment()
        deployment = convert.deployment_from_proto(current) if current else None
        last_recording_at = newest_recording_start(store)
        failed = store.list_recordings(
            statuses=[pb.RECORDING_STATUS_FAILED],
            started_from=now - dt.timedelta(hours=1),
            order=spb.SORT_ORDER_NEWEST_FIRST,
            limit=1000,
        )
        state = store.retention(window_s=86400.0)
        if state is not None:
            retention = device_health.RetentionFacts(
                destination=state.destination,
                keep_free_mb=state.keep_free_mb,
                keep_best_per_species=state.keep_best_per_species,
                free_mb=None if state.free_mb < 0 else state.free_mb,
                short_of_free_mb=state.short_of_free_mb,
                deleted_for_age=state.deleted_for_age,
                deleted_for_space=state.deleted_for_space,
            )
    except AcoustackError as exc:
        unknown.append(f"storage unreachable ({type(exc).__name__})")
    queues: dict[str, device_health.QueueState] = {}
    if queue_stats is not None:
        try:
            queues = {
                name: device_health.QueueState(waiting, consumers)
                for name, (waiting, consumers) in queue_stats().items()
            }
        except Exception as exc:  # kombu raises many kinds; any means the same here
            log.warning("device facts: queue depths unknown: %s", exc)
            unknown.append("RabbitMQ unreachable")
    facts = device_health.DeviceFacts(
        now=now,
        deployment=deployment,
        last_recording_at=last_recording_at,
        failed_last_hour=len(failed),
        last_failure_reason=failed[0].recording.failure_reason if failed else "",
        queues=queues,
        retention=retention,
    )
    return facts, unknown


def judge(
    store: StoreClient,
    queue_stats: Callable[[], Mapping[str, tuple[int, int]]] | None,
    program_config: Mapping[str, Any] | None,
    now: dt.datetime | None = None,
) -> tuple[str, device_health.DeviceFacts]:
    """The device's status ("ok" or "degraded: …") under this program configuration, and the
    facts it was judged on."""
    facts, unknown = gather(store, queue_stats, now or dt.datetime.now(dt.UTC))
    try:
        recording = read_section(program_config, "recording", RecordingConfig)
    except AcoustackError as exc:
        recording = None
        unknown.append(f"the recording section is unusable ({exc})")
    return device_health.status([*unknown, *device_health.problems(facts, recording)]), facts
