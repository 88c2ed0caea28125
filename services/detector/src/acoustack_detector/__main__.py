"""Entry point: `python -m acoustack_detector`.

This process is the Celery worker on queue `detection`, with the prefork pool
(DETECTOR_CONCURRENCY children), so a detection's time limit is enforced. The first pool child
also serves gRPC: `Model` (the bundled model), health and SelfCheck, with the model its detections
use (see ``wiring``).

Why not a gRPC process beside the worker (the layout acoustack.worker_process replaced): that is
one interpreter more, and a second copy of the model as soon as the self-check or a `Model` call
loads it there, about 250 MB on a device with one worker; gRPC must not run in a process that
forks, and only a pool child never forks, so that is where the server goes.
"""

from __future__ import annotations

import logging
import sys

from acoustack import prometheus
from acoustack.config import load_service_settings
from acoustack.worker_process import port_is_free
from acoustack_detector.settings import PREFIX, DetectorSettings
from acoustack_detector.wiring import run_worker

log = logging.getLogger("acoustack_detector")


def main() -> int:
    settings = load_service_settings(DetectorSettings, PREFIX, "acoustack-detector")
    if not port_is_free(settings.grpc_port, settings.grpc_host):
        print(
            f"acoustack-detector: {PREFIX}_GRPC_PORT: port {settings.grpc_port} is taken "
            "(another detector on this machine?); choose a free one",
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
