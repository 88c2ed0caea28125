"""Entry point: `acoustack-storage` or `python -m acoustack_storage`.

This process serves the gRPC `Store` and health. When STORAGE_BROKER_URL is set, the
file-management worker (queue `files`) runs beside it in a spawned process of its own, with the
prefork pool, so its time limits are enforced (see acoustack.worker_process).
"""

from __future__ import annotations

import logging
import sys
import threading
import time

from acoustack.config import load_service_settings
from acoustack.errors import FailedPreconditionError, UnavailableError
from acoustack.grpc_server import RunningServer, start_server, wait_for_termination
from acoustack.worker_process import start_worker_process, supervise
from acoustack_storage.migrate import apply_migrations
from acoustack_storage.repository import PostgresStore
from acoustack_storage.servicer import StoreServicer, register
from acoustack_storage.settings import PREFIX, StorageSettings
from acoustack_storage.tasks import run_file_worker

log = logging.getLogger("acoustack_storage")


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


def main() -> int:
    settings = load_service_settings(StorageSettings, PREFIX, "acoustack-storage")
    store = PostgresStore.open(
        settings.database_url, min_size=settings.pool_min_size, max_size=settings.pool_max_size
    )
    try:
        wait_and_migrate(store, settings.database_wait_s)
    except (UnavailableError, FailedPreconditionError) as exc:
        log.error("%s", exc)
        store.close()
        return 1
    server = start_server(
        [register(StoreServicer(store))],
        address=f"{settings.grpc_host}:{settings.grpc_port}",
        max_workers=settings.grpc_workers,
        max_message_bytes=settings.max_message_mb * 1024 * 1024,
    )
    log.info("storage serving on %s:%d", settings.grpc_host, server.port)
    stop = threading.Event()
    watcher = threading.Thread(
        target=watch_database, args=(store, server, settings.health_interval_s, stop), daemon=True
    )
    watcher.start()
    try:
        if not settings.broker_url:
            wait_for_termination(server, settings.shutdown_grace_s)
            return 0
        worker = start_worker_process(
            run_file_worker, settings, log_level=settings.log_level, name="storage-files-worker"
        )
        # A run in progress may take up to its hard time limit to end.
        return supervise(server, worker, grace_s=settings.task_time_limit_s + 5)
    finally:
        stop.set()
        store.close()


if __name__ == "__main__":
    sys.exit(main())
