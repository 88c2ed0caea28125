"""Entry point: `python -m acoustack_detector`. A Celery worker on queue `detection`, and the gRPC
`Model` service (for the bundled model) with the standard health service."""

from __future__ import annotations

import logging
import sys

from acoustack.celery_app import create_app
from acoustack.clients import StoreClient
from acoustack.components import (
    DetectionThresholdMessageBuilder,
    FullModelOutputMessageBuilder,
    ThresholdDetectionCleaner,
)
from acoustack.config import load_service_settings
from acoustack.errors import AcoustackError
from acoustack.grpc_server import start_server
from acoustack.names import Queue
from acoustack_detector import model_server
from acoustack_detector.config import PREFIX, DetectorSettings
from acoustack_detector.local_model import LocalModel
from acoustack_detector.pipeline import DetectionPipeline
from acoustack_detector.remote_model import RemoteModel
from acoustack_detector.worker import register_detect_task

log = logging.getLogger("acoustack_detector")


def main() -> int:
    settings = load_service_settings(DetectorSettings, PREFIX, "acoustack-detector")
    servicers = []
    if settings.model == "batdetect2":
        from acoustack_detector.batdetect2.model import BatDetect2Onnx

        try:
            bundled = BatDetect2Onnx.load(settings.model_dir)  # warm-up inference included
        except AcoustackError as exc:
            log.error("cannot load the bundled model: %s", exc)
            return 1
        model = LocalModel(bundled)
        servicers.append(
            model_server.register(
                model_server.ModelServicer(
                    bundled,
                    recordings_root=settings.recordings_root,
                    max_audio_bytes=settings.max_audio_mb * 1024 * 1024,
                )
            )
        )
    else:
        model = RemoteModel(
            settings.model.removeprefix("grpc://"), send_audio=settings.model_send_audio
        )
    log.info("model: %s", settings.model)
    builder = (
        FullModelOutputMessageBuilder()
        if settings.message_threshold is None
        else DetectionThresholdMessageBuilder(settings.message_threshold)
    )
    store = StoreClient(settings.storage_target)
    app = create_app(settings.broker_url)
    register_detect_task(
        app,
        lambda: DetectionPipeline(
            store=store,
            model=model,
            output_cleaners=[ThresholdDetectionCleaner(settings.threshold)],
            message_builders=[builder],
        ),
    )
    server = start_server(
        servicers,
        address=f"{settings.grpc_host}:{settings.grpc_port}",
        max_message_bytes=settings.max_message_mb * 1024 * 1024,
    )
    log.info(
        "gRPC (Model%s, health) on port %d",
        "" if servicers else ": remote, not served",
        server.port,
    )
    worker = app.Worker(
        queues=[Queue.DETECTION.value],
        concurrency=settings.concurrency,
        pool="solo" if settings.concurrency == 1 else "threads",
        hostname="detector@%h",
        loglevel=settings.log_level,
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
    )
    try:
        worker.start()  # returns after a warm shutdown on SIGTERM: the detection in progress ends first
    finally:
        server.stop(5)
        store.close()
    return worker.exitcode or 0


if __name__ == "__main__":
    sys.exit(main())
