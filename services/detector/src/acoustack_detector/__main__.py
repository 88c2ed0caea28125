"""Entry point: `python -m acoustack_detector`.

This process serves gRPC: `Model` (the bundled model, loaded on first use), health and SelfCheck
(the model the program names). The Celery worker on queue `detection` runs in a spawned process of
its own with the prefork pool, DETECTOR_CONCURRENCY children, so a detection's time limit is
enforced (see acoustack.worker_process); each child loads its own model.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from acoustack import prometheus
from acoustack import self_check as self_check_service
from acoustack.config import load_service_settings
from acoustack.errors import AcoustackError
from acoustack.grpc_server import start_server
from acoustack.names import TASK_TIME_LIMITS, Task
from acoustack.worker_process import start_worker_process, supervise
from acoustack_detector import servicer
from acoustack_detector.checks import self_check
from acoustack_detector.settings import PREFIX, DetectorSettings
from acoustack_detector.wiring import LazyModel, load_bundled, run_worker

log = logging.getLogger("acoustack_detector")


def main() -> int:
    settings = load_service_settings(DetectorSettings, PREFIX, "acoustack-detector")
    prometheus.prepare_metrics_dir(settings.metrics_dir)
    prometheus.start_exporter(
        settings.metrics_port, settings.metrics_host, metrics_dir=settings.metrics_dir
    )
    bundled = LazyModel(lambda: load_bundled(settings))
    try:
        from acoustack_detector.batdetect2.config import load_metadata, model_folder

        load_metadata(model_folder(settings.model_dir))  # the files, not the network
    except (AcoustackError, OSError, ValueError) as exc:
        log.error(
            "the bundled model cannot be loaded (%s): a program whose detection.model is "
            "batdetect2 will fail its check; build it with `make model`",
            exc,
        )
    check_file = Path(settings.check_file) if settings.check_file else None
    server = start_server(
        [
            servicer.register(
                servicer.ModelServicer(
                    bundled,
                    recordings_root=settings.recordings_root,
                    max_audio_bytes=settings.max_audio_mb * 1024 * 1024,
                )
            ),
            self_check_service.register(lambda config: self_check(bundled, check_file, config)),
        ],
        address=f"{settings.grpc_host}:{settings.grpc_port}",
        max_message_bytes=settings.max_message_mb * 1024 * 1024,
    )
    log.info("gRPC (Model, health, SelfCheck) on port %d", server.port)
    worker = start_worker_process(
        run_worker, settings, log_level=settings.log_level, name="detector-worker"
    )
    return supervise(server, worker, grace_s=TASK_TIME_LIMITS[Task.DETECT].hard_s + 30)


if __name__ == "__main__":
    sys.exit(main())
