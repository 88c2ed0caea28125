"""Entry point: `python -m acoustack_messenger`. This process is the Celery worker on queue
`default` (prefork, one child, so a send that hangs is stopped by its time limit); the pool child
sends, and serves gRPC: health, and SelfCheck (can each configured messenger reach its server).
SIGTERM stops it gracefully (Celery's warm shutdown).

Why not a gRPC process beside the worker (the layout acoustack.worker_process replaced): that is
one interpreter more, about 60 MB; gRPC must not run in a process that forks, and only the pool
child never forks, so that is where the server goes.
"""

from __future__ import annotations

import logging
import sys

from acoustack import prometheus
from acoustack.config import load_service_settings
from acoustack.worker_process import port_is_free
from acoustack_messenger.settings import PREFIX, MessengerSettings
from acoustack_messenger.wiring import run_worker

log = logging.getLogger("acoustack_messenger")


def main() -> int:
    settings = load_service_settings(MessengerSettings, PREFIX, "acoustack-messenger")
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)  # heartbeats report its disk
    except OSError as exc:
        print(f"acoustack-messenger: {PREFIX}_DATA_DIR: cannot create it: {exc}", file=sys.stderr)
        return 2
    if not port_is_free(settings.grpc_port, settings.grpc_host):
        print(
            f"acoustack-messenger: {PREFIX}_GRPC_PORT: port {settings.grpc_port} is taken "
            "(another messenger on this machine?); choose a free one",
            file=sys.stderr,
        )
        return 2
    prometheus.prepare_metrics_dir(settings.metrics_dir)
    prometheus.start_exporter(
        settings.metrics_port, settings.metrics_host, metrics_dir=settings.metrics_dir
    )
    return run_worker(settings)


if __name__ == "__main__":
    sys.exit(main())
