"""Entry point: `acoustack-storage` or `python -m acoustack_storage`.

When STORAGE_BROKER_URL is set, this process is the file-management worker (queue `files`, the
prefork pool, so its time limits are enforced), and its pool child serves the gRPC `Store`,
health and /metrics beside the file-management runs (see ``wiring.run_file_worker``). Without a
broker this process serves the Store alone.
"""

from __future__ import annotations

import logging
import sys
import threading

from acoustack import prometheus
from acoustack.config import load_service_settings
from acoustack.errors import FailedPreconditionError, UnavailableError
from acoustack.grpc_server import wait_for_termination
from acoustack.worker_process import port_is_free
from acoustack_storage import exported_metrics
from acoustack_storage.repository import PostgresStore
from acoustack_storage.settings import PREFIX, StorageSettings
from acoustack_storage.wiring import (
    open_repository,
    run_file_worker,
    serve,
    wait_and_migrate,
    watch_database,
)

log = logging.getLogger("acoustack_storage")


def serve_alone(settings: StorageSettings) -> int:
    """No broker: the Store in this process, until SIGTERM."""
    store = open_repository(settings)
    prometheus.prepare_metrics_dir(settings.metrics_dir)
    prometheus.start_exporter(
        settings.metrics_port,
        settings.metrics_host,
        metrics_dir=settings.metrics_dir,
        collectors=[exported_metrics.collector(store)],
    )
    try:
        wait_and_migrate(store, settings.database_wait_s)
        server = serve(settings, store)
    except (UnavailableError, FailedPreconditionError) as exc:
        log.error("%s", exc)
        store.close()
        return 1
    log.info("storage serving on %s:%d", settings.grpc_host, server.port)
    stop = threading.Event()
    watcher = threading.Thread(
        target=watch_database, args=(store, server, settings.health_interval_s, stop), daemon=True
    )
    watcher.start()
    try:
        wait_for_termination(server, settings.shutdown_grace_s)
        return 0
    finally:
        stop.set()
        store.close()


def main() -> int:
    settings = load_service_settings(StorageSettings, PREFIX, "acoustack-storage")
    if not settings.broker_url:
        return serve_alone(settings)
    for name, port, host in (
        ("GRPC_PORT", settings.grpc_port, settings.grpc_host),
        ("METRICS_PORT", settings.metrics_port, settings.metrics_host),
    ):
        if port and not port_is_free(port, host):
            print(
                f"acoustack-storage: {PREFIX}_{name}: port {port} is taken "
                "(another storage on this machine?); choose a free one",
                file=sys.stderr,
            )
            return 2
    # Migrated here, once, before the pool child that serves is forked; closed first, so no
    # connection or pool thread crosses the fork.
    store = PostgresStore.open(settings.database_url, min_size=1, max_size=1)
    try:
        wait_and_migrate(store, settings.database_wait_s)
    except (UnavailableError, FailedPreconditionError) as exc:
        log.error("%s", exc)
        return 1
    finally:
        store.close()
    prometheus.prepare_metrics_dir(settings.metrics_dir)
    return run_file_worker(settings)


if __name__ == "__main__":
    sys.exit(main())
