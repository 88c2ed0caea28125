"""Storage's parts, built from its settings: the repository (migrated once the database answers),
the device identity, the gRPC server with its database watch, and the file-management worker."""

from __future__ import annotations

import logging
import threading
import time

from acoustack.celery_app import create_app
from acoustack.errors import UnavailableError
from acoustack.grpc_server import RunningServer, start_server
from acoustack.names import TASK_TIME_LIMITS, Queue, Task
from acoustack.worker_process import run_prefork_worker
from acoustack_storage.device import DeviceIdentity
from acoustack_storage.events import EventPublisher
from acoustack_storage.migrate import apply_migrations
from acoustack_storage.repository import PostgresStore
from acoustack_storage.servicer import StoreServicer, register
from acoustack_storage.settings import StorageSettings
from acoustack_storage.tasks import register_manage_files_task

log = logging.getLogger("acoustack_storage")

# A file-management run in progress may take up to its hard time limit to end.
WORKER_STOP_GRACE_S = TASK_TIME_LIMITS[Task.MANAGE_FILES].hard_s + 5


def with_events(store: PostgresStore, settings: StorageSettings) -> PostgresStore:
    """The store, publishing its domain events on the broker when one is configured."""
    if settings.broker_url:
        store.events = EventPublisher(settings.broker_url)
    return store


def open_repository(settings: StorageSettings) -> PostgresStore:
    store = PostgresStore.open(
        settings.database_url, min_size=settings.pool_min_size, max_size=settings.pool_max_size
    )
    return with_events(store, settings)


def wait_and_migrate(store: PostgresStore, wait_s: float) -> None:
    """Apply migrations, waiting up to wait_s for the database (it may still be starting)."""
    deadline = time.monotonic() + wait_s
    delay = 0.5
    while True:
        try:
            with store.connection() as conn:
                applied = apply_migrations(conn)
            log.info("database ready; migrations applied now: %s", applied or "none")
            return
        except UnavailableError as exc:
            if time.monotonic() + delay > deadline:
                raise UnavailableError(
                    f"the database was not reachable within {wait_s:.0f} s: {exc}",
                    help="check STORAGE_DATABASE_URL and that Postgres is running",
                ) from None
            log.warning("waiting for the database: %s", exc)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def watch_database(
    store: PostgresStore, server: RunningServer, interval_s: float, stop: threading.Event
) -> None:
    """Report NOT_SERVING while the database is unreachable, so orchestrators can see it."""
    serving = True
    while not stop.wait(interval_s):
        ok = store.ping()
        if ok != serving:
            log.warning("database %s", "reachable again" if ok else "unreachable: NOT_SERVING")
            server.set_serving(ok)
            serving = ok


def serve(settings: StorageSettings, store: PostgresStore) -> RunningServer:
    """The Store (and health) on its port; the device's identity is settled first, so every
    service that asks gets the same one."""
    device = DeviceIdentity(store, settings.data_dir)
    log.info("device %s", device.get())
    return start_server(
        [register(StoreServicer(store, device))],
        address=f"{settings.grpc_host}:{settings.grpc_port}",
        max_workers=settings.grpc_workers,
        max_message_bytes=settings.max_message_mb * 1024 * 1024,
    )


def run_file_worker(settings: StorageSettings) -> int:
    """The Celery worker on queue `files`, until SIGTERM (a warm shutdown: the run in progress
    ends first). Module-level, so that a spawned process can run it."""
    app = create_app(settings.broker_url)
    register_manage_files_task(
        app,
        # One task at a time needs few connections.
        lambda: with_events(
            PostgresStore.open(settings.database_url, min_size=1, max_size=2), settings
        ),
        settings.temporary_areas,
    )
    log.info("file management: temporary area %s", ", ".join(map(str, settings.temporary_areas)))
    return run_prefork_worker(app, Queue.FILES, name="storage", log_level=settings.log_level)
