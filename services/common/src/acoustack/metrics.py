"""Heartbeat metrics: functions evaluated when a heartbeat is sent (see tasks.generate_heartbeat_task).

Bind arguments with functools.partial, e.g. ``partial(last_recording_age, store)``.
"""

from __future__ import annotations

import datetime as dt
import resource
import shutil
import time
from pathlib import Path

from acoustack import schema
from acoustack.clients import StoreClient
from acoustack.v1 import store_pb2 as spb
from acoustack.v1 import types_pb2 as pb


def newest_recording_start(store: StoreClient) -> dt.datetime | None:
    """When the newest recording that did not fail started; None before the first."""
    newest = store.list_recordings(
        statuses=[
            pb.RECORDING_STATUS_TEMPORARY,
            pb.RECORDING_STATUS_SAVED,
            pb.RECORDING_STATUS_DELETED,
        ],
        order=spb.SORT_ORDER_NEWEST_FIRST,
        limit=1,
    )
    return newest[0].recording.started_at.ToDatetime(tzinfo=dt.UTC) if newest else None


def last_recording_age(store: StoreClient, now: dt.datetime | None = None) -> schema.Metric:
    """Seconds since the newest recording that did not fail: a silent microphone shows here.

    -1 when the device has never recorded.
    """
    now = now or dt.datetime.now(dt.UTC)
    started = newest_recording_start(store)
    if started is None:
        return schema.Metric(name="last_recording_age", value=-1.0, unit="s")
    return schema.Metric(name="last_recording_age", value=(now - started).total_seconds(), unit="s")


def free_storage(path: Path) -> schema.Metric:
    return schema.Metric(name="free_storage", value=shutil.disk_usage(path).free / 1e9, unit="GB")


def used_storage(path: Path) -> schema.Metric:
    return schema.Metric(name="used_storage", value=shutil.disk_usage(path).used / 1e9, unit="GB")


def free_memory() -> schema.Metric:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return schema.Metric(
                    name="free_memory", value=int(line.split()[1]) / 1024, unit="MB"
                )
    raise OSError("MemAvailable not in /proc/meminfo")


def process_memory() -> schema.Metric:
    return schema.Metric(
        name="process_memory",
        value=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        unit="MB",
    )


class ProcessCpu:
    """CPU used by this process since the previous heartbeat, as a share of one core.

    acoupi's reads the instantaneous figure, which is always 0 in a process that was idle waiting
    for the heartbeat; the share over the interval is what says whether the device is busy.
    """

    def __init__(self) -> None:
        # process_time: the kernel's nanosecond CPU clock; os.times() counts 10 ms ticks, which
        # reads 0 for a short burst of work.
        self._last = (time.process_time(), dt.datetime.now(dt.UTC))

    def __call__(self) -> schema.Metric:
        used, at = time.process_time(), dt.datetime.now(dt.UTC)
        (before, before_at), self._last = self._last, (used, at)
        cpu = used - before
        wall = max((at - before_at).total_seconds(), 1e-6)
        return schema.Metric(name="process_cpu", value=100.0 * cpu / wall, unit="%")
