"""The detector's parts, built from its settings: the bundled model (loaded on first use), the
worker (this service's main process, prefork pool, one model per pool child) and what the first
pool child serves over gRPC (the bundled model's `Model` service, and the self-check) with the
model its detections use."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from acoustack.celery_app import create_app
from acoustack.names import Queue
from acoustack.worker_process import (
    pool_children_die_with_parent,
    run_prefork_worker,
    serve_from_pool_child,
)
from acoustack_detector.settings import DetectorSettings
from acoustack_detector.tasks import register_detect_task

if TYPE_CHECKING:
    import numpy as np

    from acoustack import schema
    from acoustack.grpc_server import RunningServer
    from acoustack_detector.audio_model import AudioModel
    from acoustack_detector.pipeline import Detector

log = logging.getLogger("acoustack_detector")


def load_bundled(settings: DetectorSettings) -> AudioModel:
    from acoustack_detector.batdetect2.model import BatDetect2Onnx

    return BatDetect2Onnx.load(settings.model_dir)  # warm-up inference included


class LazyModel:
    """The bundled model, loaded the first time it is used: a program whose `detection.model`
    is a model server never pays its memory here."""

    def __init__(self, load: Callable[[], AudioModel]) -> None:
        self._load = load
        self._model: AudioModel | None = None
        self._lock = threading.Lock()

    def __call__(self) -> AudioModel:
        with self._lock:
            if self._model is None:
                self._model = self._load()
                log.info("bundled model %s %s loaded", self._model.name, self._model.version)
            return self._model

    # What the Model servicer reads of an AudioModel.
    name = property(lambda self: self().name)
    version = property(lambda self: self().version)
    samplerate_hz = property(lambda self: self().samplerate_hz)
    classes = property(lambda self: self().classes)

    def detect_audio(
        self, samples: np.ndarray, samplerate_hz: int, time_expansion: float = 1.0
    ) -> list[schema.Detection]:
        return self().detect_audio(samples, samplerate_hz, time_expansion)

    def detect_file(self, path: Path, time_expansion: float = 1.0) -> list[schema.Detection]:
        return self().detect_file(path, time_expansion)


def serve_grpc(settings: DetectorSettings, bundled: LazyModel) -> RunningServer:
    """In the first pool child: Model, SelfCheck and health, on the child's own model."""
    from acoustack import self_check as self_check_service
    from acoustack.grpc_server import start_server
    from acoustack_detector import servicer
    from acoustack_detector.checks import self_check

    report_missing_model(settings)
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
    return server


def report_missing_model(settings: DetectorSettings) -> None:
    """Say at the start, not at the first recording, that the bundled model's files are missing
    or damaged (the files only: the network loads on first use)."""
    from acoustack.errors import AcoustackError
    from acoustack_detector.batdetect2.config import load_metadata, model_folder

    try:
        load_metadata(model_folder(settings.model_dir))
    except (AcoustackError, OSError, ValueError) as exc:
        log.error(
            "the bundled model cannot be loaded (%s): a program whose detection.model is "
            "batdetect2 will fail its check; build it with `make model`",
            exc,
        )


def make_detector(settings: DetectorSettings, bundled: LazyModel) -> Detector:
    from acoustack.clients import StoreClient
    from acoustack_detector.pipeline import Detector

    return Detector(StoreClient(settings.storage_target), bundled)


def run_worker(settings: DetectorSettings) -> int:
    """The Celery worker on queue `detection`, in this process: prefork, ``concurrency``
    children, each loading its model on its first use (after the fork), so a detection past its
    time limit is stopped. The first child serves gRPC too, sharing its model.

    This process only takes tasks from the broker and hands them to the children: what only a
    child uses (numpy, the pipeline, the servers) is imported there, after the fork. Imported
    here, a page of it would be copied as soon as a child touched it, and this process would
    keep the original, never used, as its own."""
    pool_children_die_with_parent()
    # Made before the fork and still empty: each child fills its own copy.
    bundled = LazyModel(lambda: load_bundled(settings))
    serve_from_pool_child(lambda: serve_grpc(settings, bundled))
    app = create_app(settings.broker_url)
    register_detect_task(app, lambda: make_detector(settings, bundled))
    return run_prefork_worker(
        app,
        Queue.DETECTION,
        name="detector",
        concurrency=settings.concurrency,
        log_level=settings.log_level,
    )
