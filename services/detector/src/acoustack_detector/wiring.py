"""The detector's parts, built from its settings: the bundled model (loaded on first use), the
worker (spawned, prefork pool, one model per pool child) and what the gRPC process serves (the
bundled model's `Model` service, and the self-check)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from acoustack import schema
from acoustack.celery_app import create_app
from acoustack.clients import StoreClient
from acoustack.names import Queue
from acoustack.worker_process import run_prefork_worker
from acoustack_detector.audio_model import AudioModel
from acoustack_detector.pipeline import Detector
from acoustack_detector.settings import DetectorSettings
from acoustack_detector.tasks import register_detect_task

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


def run_worker(settings: DetectorSettings) -> int:
    """The Celery worker on queue `detection`: prefork, ``concurrency`` children, each loading its
    model on its first task (after the fork), so a detection past its time limit is stopped."""
    app = create_app(settings.broker_url)
    register_detect_task(
        app,
        lambda: Detector(StoreClient(settings.storage_target), lambda: load_bundled(settings)),
    )
    return run_prefork_worker(
        app,
        Queue.DETECTION,
        name="detector",
        concurrency=settings.concurrency,
        log_level=settings.log_level,
    )
