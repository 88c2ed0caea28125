"""A profile of one task run, wherever the task runs (`acoustack task run NAME --profile`).

The scheduler sends the task with a header naming a reply queue of its own. The worker that takes
it (any service: the signal handlers are connected in every app ``create_app`` makes) runs it under
cProfile, in the process and thread that run the task, and publishes what it found to that queue:
wall and CPU time, how the task ended, and the functions that took the most time. Tasks sent
without the header run as always, at the cost of one dictionary lookup.
"""

from __future__ import annotations

import cProfile
import json
import logging
import pstats
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun
from kombu import Queue as KombuQueue

from acoustack.names import PROFILE_QUEUE_PREFIX, PROFILE_REPLY_HEADER

log = logging.getLogger(__name__)

TOP_FUNCTIONS = 15


@dataclass
class _Running:
    reply_to: str
    profiler: cProfile.Profile
    wall_start: float
    cpu_start: float


_running: dict[str, _Running] = {}


def _reply_to(task: Any) -> str | None:
    headers = getattr(task.request, "headers", None) or {}
    return headers.get(PROFILE_REPLY_HEADER)


@task_prerun.connect(weak=False, dispatch_uid="acoustack-profile-start")
def _start(task_id: str, task: Any, **_: Any) -> None:
    reply_to = _reply_to(task)
    if not reply_to:
        return
    profiler = cProfile.Profile()
    _running[task_id] = _Running(reply_to, profiler, time.perf_counter(), time.process_time())
    profiler.enable()


@task_postrun.connect(weak=False, dispatch_uid="acoustack-profile-end")
def _end(task_id: str, task: Any, retval: Any = None, state: str | None = None, **_: Any) -> None:
    running = _running.pop(task_id, None)
    if running is None:
        return
    running.profiler.disable()
    report = {
        "task": task.name,
        "task_id": task_id,
        "worker": f"{task.request.hostname or socket.gethostname()}",
        "outcome": state or "",
        "result": retval
        if isinstance(retval, (dict, list, str, int, float, type(None)))
        else repr(retval),
        "wall_s": round(time.perf_counter() - running.wall_start, 6),
        "cpu_s": round(time.process_time() - running.cpu_start, 6),
        "functions": top_functions(running.profiler),
    }
    try:
        with task.app.producer_pool.acquire(block=True) as producer:
            producer.publish(
                json.dumps(report, default=str),
                exchange="",
                routing_key=running.reply_to,
                content_type="application/json",
                retry=True,
                retry_policy={"max_retries": 3},
            )
    except Exception:  # the task itself is done either way; the profile is extra
        log.exception("could not send the profile of %s to %s", task.name, running.reply_to)


def top_functions(profiler: cProfile.Profile, limit: int = TOP_FUNCTIONS) -> list[dict[str, Any]]:
    """The functions with the most cumulative time, with their calls and own time."""
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{name} ({_short(filename)}:{line})",
                "calls": calls,
                "own_s": round(own, 6),
                "cumulative_s": round(cumulative, 6),
            }
        )
    rows.sort(key=lambda row: row["cumulative_s"], reverse=True)
    return rows[:limit]


def _short(filename: str) -> str:
    """site-packages/celery/app/trace.py rather than the whole path."""
    for marker in ("site-packages/", "src/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


class ProfileTimeout(Exception):
    """No profile came back in time (no worker on the task's queue, or the task is still running)."""


@contextmanager
def profile_reply_queue(app: Celery):
    """A queue of its own for one profile; yields (its name, a function that waits for the
    profile). The queue goes when the connection closes."""
    name = f"{PROFILE_QUEUE_PREFIX}{uuid.uuid4()}"
    with app.connection_for_write() as connection:
        queue = KombuQueue(name, exclusive=True, auto_delete=True, durable=False)
        bound = queue.bind(connection.default_channel)
        bound.declare()

        def wait(timeout_s: float) -> dict[str, Any]:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                message = bound.get(no_ack=True)
                if message is not None:
                    return json.loads(message.body)
                time.sleep(0.1)
            raise ProfileTimeout(f"no profile within {timeout_s:g} s")

        yield name, wait
