"""A service's Celery worker, with the prefork pool, and the gRPC server in its pool child.

Why prefork: it is the Celery pool that really enforces task time limits (a microphone read or a
send that hangs is killed, and the task goes back to its queue). But it forks, and forking a
process that runs a gRPC server or holds gRPC channels is not safe (gRPC's threads and locks do not
survive a fork). So the worker is the service's main process and never touches gRPC, and the pool
child (the first one, when there are several) serves gRPC (health, SelfCheck, and the service's
own API) beside its tasks, with the clients and models its tasks use (``serve_from_pool_child``).
Two interpreters per service, the second forked from the first so most of their memory is
shared: a gRPC process spawned beside the worker was a third, about 60-80 MB each, and in the
detector a second copy of the model.

Each pool child dies with the main process (``pool_children_die_with_parent``), as a container's
processes all die together; SIGTERM is Celery's warm shutdown (the task in progress finishes).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown

from acoustack.grpc_server import RunningServer
from acoustack.names import Queue

log = logging.getLogger(__name__)


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux), as a container's processes
    all die together: a service killed with SIGKILL must not leave a worker taking tasks on its
    own, out of sight of the health checks. Elsewhere this does nothing."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the request was made
        os._exit(1)


def pool_children_die_with_parent() -> None:
    """Each prefork pool child, once forked, dies with the process that forked it."""
    worker_process_init.connect(lambda **_: die_with_parent(os.getppid()), weak=False)


def port_is_free(port: int, host: str = "0.0.0.0") -> bool:
    """Checked by the main process when a pool child will bind the port: a child that cannot
    would be replaced again and again rather than stop the service with a message."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def serve_from_pool_child(
    start: Callable[[], RunningServer], *, child_index: int = 0, grace_s: float = 5.0
) -> list[RunningServer]:
    """The layout that saves an interpreter: the worker is the service's main process (it never
    touches gRPC, so forking is safe) and the prefork pool child numbered ``child_index`` serves
    gRPC once forked (``start()``), beside its tasks; the server stops when the child ends. A
    child killed at a task's hard time limit takes its server with it; the child that replaces it
    (the same index) serves again within a second; calls in flight get ``grace_s`` when the child
    stops. Returns the list the running server is put in (in that child)."""
    running: list[RunningServer] = []

    @worker_process_init.connect(weak=False)
    def serve(**_: Any) -> None:
        from billiard.process import current_process

        if getattr(current_process(), "index", 0) != child_index:
            return
        try:
            running.append(start())
        except Exception as exc:
            # Raising would make the pool replace this child again and again; the tasks go on,
            # and the health check (unreachable) tells the operator.
            log.error("gRPC not served: %s", exc)

    @worker_process_shutdown.connect(weak=False)
    def finish(**_: Any) -> None:
        for server in running:
            server.set_serving(False)
            server.stop(grace_s)

    return running


def run_prefork_worker(
    app: Celery, queue: Queue, *, name: str, concurrency: int = 1, log_level: str = "INFO"
) -> int:
    """A service's Celery worker on ``queue``, in this (worker) process. Prefork: only a pool
    child can be killed at the hard time limit. Orders come only from its queue: no cluster
    gossip, start-up sync or event heartbeats (less memory and traffic on a Pi; the broker
    connection keeps its own heartbeat). Returns after a warm shutdown on SIGTERM, once the task in
    progress has ended."""
    worker = app.Worker(
        queues=[queue.value],
        concurrency=concurrency,
        pool="prefork",
        hostname=f"{name}@{socket.gethostname()}",  # %h is expanded only by the celery CLI
        loglevel=log_level,
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
    )
    # What is loaded so far is shared with the pool children the start forks; frozen, the
    # children's garbage collector leaves it alone rather than copy every page it walks.
    gc.freeze()
    worker.start()
    return worker.exitcode or 0
