"""Storage's parts, built from its settings: the repository (migrated once the database answers),
the device identity, the gRPC server with its database watch, and the file-management worker. With
a broker the worker is the service's main process and its pool child serves the Store beside the
file-management runs, on one connection pool (``run_file_worker``)."""

from __future__ import annotations

import logging
import threading
import time

from celery.signals import worker_process_shutdown

from acoustack import prometheus
from acoustack.celery_app import create_app
from acoustack.errors import UnavailableError
from acoustack.grpc_server import RunningServer, start_server
from acoustack.names import Queue
from acoustack.worker_process import (
    pool_children_die_with_parent,
    run_prefork_worker,
    serve_from_pool_child,
)
from acoustack_storage import exported_metrics
from acoustack_storage.device import DeviceIdentity
from acoustack_storage.events import EventPublisher
from acoustack_storage.migrate import apply_migrations
from acoustack_storage.repository import PostgresStore
from acoustack_storage.servicer import StoreServicer, register
from acoustack_storage.settings import StorageSettings
from acoustack_storage.tasks import register_manage_files_task

log = logging.getLogger("acoustack_storage")


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
    """The Celery worker on queue `files`, in this process, until SIGTERM (a warm shutdown: the
    run in progress ends first). Prefork with one child, so a run's time limit is enforced; the
    child also serves the Store, its health (following the database) and /metrics, with the
    repository file management uses. Why: a gRPC process beside the worker is one interpreter
    more (about 70 MB) and a pool of connections more (a Postgres process each)."""
    pool_children_die_with_parent()
    child: dict[str, PostgresStore] = {}
    stop = threading.Event()

    def start() -> RunningServer:
        store = child["store"] = open_repository(settings)
        # The database may have gone since the main process migrated (a replaced child).
        wait_and_migrate(store, settings.database_wait_s)
        prometheus.start_exporter(
            settings.metrics_port,
            settings.metrics_host,
            metrics_dir=settings.metrics_dir,
            collectors=[exported_metrics.collector(store)],
        )
        server = serve(settings, store)
        log.info("storage serving on %s:%d", settings.grpc_host, server.port)
        threading.Thread(
            target=watch_database,
            args=(store, server, settings.health_interval_s, stop),
            daemon=True,
        ).start()
        return server

    def file_store() -> PostgresStore:
        # The serving child's repository; a child that could not serve opens its own.
        if "store" not in child:
            child["store"] = open_repository(settings)
        return child["store"]

    serve_from_pool_child(start, grace_s=settings.shutdown_grace_s)

    @worker_process_shutdown.connect(weak=False)
    def _close(**_: object) -> None:  # after the server has stopped (connected after it)
        stop.set()
        if "store" in child:
            child["store"].close()

    app = create_app(settings.broker_url)
    register_manage_files_task(app, file_store, settings.temporary_areas)
    log.info("file management: temporary area %s", ", ".join(map(str, settings.temporary_areas)))
    return run_prefork_worker(app, Queue.FILES, name="storage", log_level=settings.log_level)
