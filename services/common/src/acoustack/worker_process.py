"""A service's Celery worker in a freshly spawned process of its own, beside its gRPC server.

Why: the prefork pool is the Celery pool that really enforces task time limits (a microphone read or
a send that hangs is killed, and the task goes back to its queue), but it forks, and forking a
process that runs a gRPC server or holds gRPC channels is not safe (gRPC's threads and locks do not
survive a fork). So the gRPC server (health, SelfCheck, Model) stays in the service's main process,
and the worker runs in a fresh interpreter (``python -m acoustack.worker_process``, given its work
pickled on stdin), which never touched gRPC; its pool children make their own clients after the
fork, on their first task. A plain subprocess rather than multiprocessing's ``spawn``, which
would also start a resource-tracker process (about 6 MB more per service, for nothing).

The recorder turns this round to save an interpreter on the device that records: its worker is the
main process, and the pool child serves gRPC (see ``acoustack_recorder.__main__``).

The main process supervises: SIGTERM or SIGINT is passed on to the worker (Celery's warm shutdown:
the task in progress finishes), and a worker that exits on its own stops the service with its exit
code, so compose or k3s restart the whole service rather than leave a server with no worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
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
    start: Callable[[], RunningServer], *, child_index: int = 0
) -> list[RunningServer]:
    """The layout that saves an interpreter: the worker is the service's main process (it never
    touches gRPC, so forking is safe) and the prefork pool child numbered ``child_index`` serves
    gRPC once forked (``start()``), beside its tasks; the server stops when the child ends. A
    child killed at a task's hard time limit takes its server with it; the child that replaces it
    (the same index) serves again within a second. Returns the list the running server is put
    in (in that child)."""
    running: list[RunningServer] = []

    @worker_process_init.connect(weak=False)
    def serve(**_: Any) -> None:
        from billiard.process import current_process

        if getattr(current_process(), "index", 0) != child_index:
            return
        try:
            running.append(start())
        except OSError as exc:
            # Raising would make the pool replace this child again and again; the tasks go on,
            # and the health check (unreachable) tells the operator.
            log.error("gRPC not served: %s", exc)

    @worker_process_shutdown.connect(weak=False)
    def finish(**_: Any) -> None:
        for server in running:
            server.set_serving(False)
            server.stop(5)

    return running


def _run(
    target: Callable[..., int | None], log_level: str, parent_pid: int, args: tuple[Any, ...]
) -> None:
    die_with_parent(parent_pid)
    pool_children_die_with_parent()
    # A fresh interpreter starts with no logging set up; match the service's format.
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raise SystemExit(target(*args) or 0)


class WorkerProcess:
    """The worker's process, as the supervisor sees it."""

    def __init__(self, popen: subprocess.Popen) -> None:
        self._popen = popen

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def exitcode(self) -> int | None:
        return self._popen.poll()

    def is_alive(self) -> bool:
        return self._popen.poll() is None

    def join(self, timeout_s: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout_s)

    def kill(self) -> None:
        self._popen.kill()


def start_worker_process(
    target: Callable[..., int | None], *args: Any, log_level: str = "INFO", name: str = "worker"
) -> WorkerProcess:
    """Run ``target(*args)`` (a module-level function that starts a Celery worker) in a fresh
    interpreter. ``target`` and ``args`` must pickle (service settings do)."""
    work = pickle.dumps((target, log_level, os.getpid(), args))
    popen = subprocess.Popen(
        [sys.executable, "-m", "acoustack.worker_process", name], stdin=subprocess.PIPE
    )
    assert popen.stdin is not None
    popen.stdin.write(work)
    popen.stdin.close()
    log.info("%s process %d started", name, popen.pid)
    return WorkerProcess(popen)


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
    worker.start()
    return worker.exitcode or 0


def supervise(
    server: RunningServer,
    worker: WorkerProcess,
    *,
    grace_s: float = 60.0,
    poll_s: float = 1.0,
) -> int:
    """Serve until SIGTERM/SIGINT or until the worker exits; then stop both. Returns the exit code
    for the service: 0 after a requested stop, the worker's own code when it died by itself."""
    requested = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info(
            "received %s: stopping the worker (up to %.0f s)", signal.Signals(signum).name, grace_s
        )
        requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not requested.wait(poll_s):
        if not worker.is_alive():
            log.error("the worker exited (code %s): stopping the service", worker.exitcode)
            server.stop(5)
            return worker.exitcode or 1
    server.set_serving(False)
    if worker.is_alive() and worker.pid is not None:
        os.kill(worker.pid, signal.SIGTERM)
    worker.join(grace_s)
    if worker.is_alive():
        log.warning("the worker did not stop within %.0f s: killing it", grace_s)
        worker.kill()
        worker.join(5)
    server.stop(5)
    log.info("stopped")
    return 0


if __name__ == "__main__":  # the worker's interpreter: its work comes pickled on stdin
    _run(*pickle.loads(sys.stdin.buffer.read()))
