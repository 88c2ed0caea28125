"""Entry point: `python -m acoustack_detector`.

This process serves gRPC: `Model` (for the bundled model), health and SelfCheck (the model's
self-check). The Celery worker on queue `detection` runs in a spawned process of its own with the
prefork pool, DETECTOR_CONCURRENCY children, so a detection's time limit is enforced (see
acoustack.worker_process); each child loads its own model.
"""

from __future__ import annotations

import logging
import sys

from acoustack import self_check as self_check_service
from acoustack.config import load_service_settings
from acoustack.errors import AcoustackError
from acoustack.grpc_server import start_server
from acoustack.worker_process import start_worker_process, supervise
from acoustack_detector import servicer
from acoustack_detector.settings import PREFIX, DetectorSettings
from acoustack_detector.wiring import load_bundled, run_worker, self_check

log = logging.getLogger("acoustack_detector")


def main() -> int:
    settings = load_service_settings(DetectorSettings, PREFIX, "acoustack-detector")
    servicers = []
    bundled = None
    if settings.model == "batdetect2":
        try:
            bundled = load_bundled(settings)
        except AcoustackError as exc:
            log.error("cannot load the bundled model: %s", exc)
            return 1
        servicers.append(
            servicer.register(
                servicer.ModelServicer(
                    bundled,
                    recordings_root=settings.recordings_root,
                    max_audio_bytes=settings.max_audio_mb * 1024 * 1024,
                )
            )
        )
    servicers.append(
        self_check_service.register(lambda config: self_check(settings, bundled, config))
    )
    log.info("model: %s", settings.model)
    server = start_server(
        servicers,
        address=f"{settings.grpc_host}:{settings.grpc_port}",
        max_message_bytes=settings.max_message_mb * 1024 * 1024,
    )
    log.info(
        "gRPC (%shealth, SelfCheck) on port %d",
        "Model, " if bundled is not None else "",
        server.port,
    )
    worker = start_worker_process(
        run_worker, settings, log_level=settings.log_level, name="detector-worker"
    )
    return supervise(server, worker, grace_s=settings.task_time_limit_s + 30)


if __name__ == "__main__":
    sys.exit(main())
