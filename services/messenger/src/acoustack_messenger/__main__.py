"""Entry point: `python -m acoustack_messenger`. The gRPC server (health, and SelfCheck: can each
configured messenger reach its server) in this process, and the Celery worker on queue `default`
in a spawned one (see acoustack.worker_process); SIGTERM stops both gracefully."""

from __future__ import annotations

import logging
import sys

from acoustack import prometheus
from acoustack import self_check as self_check_service
from acoustack.clients import StoreClient
from acoustack.config import load_service_settings
from acoustack.grpc_server import start_server
from acoustack.worker_process import start_worker_process, supervise
from acoustack_messenger.checks import self_check
from acoustack_messenger.settings import PREFIX, MessengerSettings
from acoustack_messenger.wiring import run_worker

log = logging.getLogger("acoustack_messenger")


def main() -> int:
    settings = load_service_settings(MessengerSettings, PREFIX, "acoustack-messenger")
    prometheus.prepare_metrics_dir(settings.metrics_dir)
    prometheus.start_exporter(
        settings.metrics_port, settings.metrics_host, metrics_dir=settings.metrics_dir
    )
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)  # heartbeats report its disk
    except OSError as exc:
        print(f"acoustack-messenger: {PREFIX}_DATA_DIR: cannot create it: {exc}", file=sys.stderr)
        return 2
    # The device id comes from storage, which owns it; this process needs it for the MQTT check.
    identity = StoreClient(settings.storage_target).learned_identity(settings.data_dir)
    server = start_server(
        [
            self_check_service.register(
                lambda config: self_check(config, identity.get, settings.secrets_dir)
            )
        ],
        address=f"{settings.grpc_host}:{settings.grpc_port}",
        max_workers=4,
    )
    log.info("gRPC (health, SelfCheck) on port %d", server.port)
    worker = start_worker_process(
        run_worker, settings, log_level=settings.log_level, name="messenger-worker"
    )
    return supervise(server, worker, grace_s=settings.shutdown_grace_s)


if __name__ == "__main__":
    sys.exit(main())
