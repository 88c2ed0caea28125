"""The Celery task `manage_files` on queue `files` (``ManageFilesArguments``): storage files each
processed temporary recording in its final place, or deletes it, through the file-management
template (see ``files.py``), after retention has made room.

The worker runs in a process spawned beside the gRPC server (``wiring.run_file_worker``), with a
prefork pool (concurrency 1) so that the task's time limits are enforced: a file move that hangs
is killed. The task's database pool is made in the pool child, on its first task: connections do
not survive a fork.

A run that fails (database down, a full disk) is logged and not retried: the next scheduled run
picks up whatever is still temporary, and a failed recording move leaves nothing half-done.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_shutdown

from acoustack.celery_app import register_task
from acoustack.errors import InvalidArgumentError, UnavailableError
from acoustack.names import ManageFilesArguments, Task
from acoustack_storage.files import RepositoryStore, build_file_management_task, build_retention
from acoustack_storage.repository import PostgresStore
from acoustack_storage.retention import ABANDONED_COPY_AGE_S

log = logging.getLogger(__name__)


def register_manage_files_task(
    app: Celery, open_repository: Callable[[], PostgresStore], temp_dirs: Sequence[Path]
):
    """Add `manage_files` to ``app``; ``open_repository`` is called in the process that runs
    the task, on its first task."""
    opened: list[PostgresStore] = []

    def repository() -> PostgresStore:
        if not opened:
            opened.append(open_repository())
        return opened[0]

    def close(**_: Any) -> None:
        # A pool child that ends closes its connections, rather than leaving Postgres to find
        # them cut.
        while opened:
            opened.pop().close()

    worker_process_shutdown.connect(close, weak=False)

    last_copy_sweep = [-float("inf")]

    def manage_files(request: Any, arguments: ManageFilesArguments) -> dict:
        store = RepositoryStore(repository())
        program_config = arguments.program_config
        try:
            task = build_file_management_task(store, program_config, temp_dirs)
            retention = build_retention(repository(), program_config)
        except InvalidArgumentError as exc:
            log.error("manage_files: the program's configuration is not usable: %s", exc)
            return {"outcome": "failed", "reason": f"configuration: {exc}"}
        # Retention first, so filing finds room. Walking the whole destination for abandoned
        # copies is left to one run an hour.
        sweep = time.monotonic() - last_copy_sweep[0] >= ABANDONED_COPY_AGE_S
        try:
            retention_report = retention.run(remove_abandoned_copies=sweep)
        except UnavailableError:
            raise  # the database is away: filing cannot run either
        except Exception:
            log.exception("manage_files: retention failed; filing goes on")
            retention_report = None
        if sweep:
            last_copy_sweep[0] = time.monotonic()
        try:
            task()
        except SoftTimeLimitExceeded:
            log.error(
                "manage_files: past its time limit after %d saved, %d deleted; the rest waits "
                "for the next run",
                store.saved,
                store.deleted,
            )
            raise
        log.info("manage_files: %d saved, %d deleted", store.saved, store.deleted)
        result: dict[str, Any] = {"outcome": "done", "saved": store.saved, "deleted": store.deleted}
        if retention_report is not None:
            result["retention"] = dataclasses.asdict(retention_report)
        return result

    return register_task(app, Task.MANAGE_FILES, manage_files)
