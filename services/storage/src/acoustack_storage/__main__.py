"""Entry point: `acoustack-storage` or `python -m acoustack_storage`.

This process serves the gRPC `Store` and health. When STORAGE_BROKER_URL is set, the
file-management worker (queue `files`) runs beside it in a spawned process of its own, with the
prefork pool, so its time limits are enforced (see acoustack.worker_process).
"""

from __future__ import annotations

import logging
import sys
import threading

from acoustack import prometheus
from acoustack.config import load_service_settings
from acoustack.errors import FailedPreconditionError, UnavailableError
from acoustack.grpc_server import wait_for_termination
from acoustack.worker_process import start_worker_process, supervise
from acoustack_storage import exported_metrics
from acoustack_storage.settings import PREFIX, StorageSettings
from acoustack_storage.wiring import (
    WORKER_STOP_GRACE_S,
    open_repository,
    run_file_worker,
    serve,
    wait_and_migrate,
    watch_database,
)

log = logging.getLogger("acoustack_storage")


def main() -> int:
    settings = load_service_settings(StorageSettings, PREFIX, "acoustack-storage")
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
        if not settings.broker_url:
            wait_for_termination(server, settings.shutdown_grace_s)
            return 0
        worker = start_worker_process(
            run_file_worker, settings, log_level=settings.log_level, name="storage-files-worker"
        )
        return supervise(server, worker, grace_s=WORKER_STOP_GRACE_S)
    finally:
        stop.set()
        store.close()


if __name__ == "__main__":
    sys.exit(main())
