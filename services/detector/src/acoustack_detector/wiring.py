"""The detector service's parts that run in processes: the worker (spawned, prefork pool, one model
per pool child) and the self-check (in the gRPC process). `python -m acoustack_detector` puts them
together."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from acoustack.celery_app import create_app
from acoustack.clients import StoreClient
from acoustack.components import (
    DetectionThresholdMessageBuilder,
    FullModelOutputMessageBuilder,
    ThresholdDetectionCleaner,
)
from acoustack.errors import AcoustackError
from acoustack.names import Queue
from acoustack.program_config import DetectionConfig, read_section
from acoustack.self_check import CheckResult
from acoustack.worker_process import run_prefork_worker
from acoustack_detector.audio_model import AudioModel
from acoustack_detector.local_model import LocalModel
from acoustack_detector.pipeline import DetectionPipeline
from acoustack_detector.remote_model import RemoteModel
from acoustack_detector.settings import DetectorSettings
from acoustack_detector.tasks import register_detect_task

log = logging.getLogger("acoustack_detector")


def load_bundled(settings: DetectorSettings) -> AudioModel:
    from acoustack_detector.batdetect2.model import BatDetect2Onnx

    return BatDetect2Onnx.load(settings.model_dir)  # warm-up inference included


def build_model(settings: DetectorSettings):
    if settings.model == "batdetect2":
        return LocalModel(load_bundled(settings))
    return RemoteModel(settings.model.removeprefix("grpc://"), send_audio=settings.model_send_audio)


def run_worker(settings: DetectorSettings) -> int:
    """The Celery worker on queue `detection`: prefork, ``concurrency`` children, each loading its
    model on its first task (after the fork), so a detection past its time limit is stopped."""
    app = create_app(
        settings.broker_url,
        task_soft_time_limit_s=settings.task_time_limit_s,
        task_time_limit_s=settings.task_time_limit_s + 30,
    )
    builder = (
        FullModelOutputMessageBuilder()
        if settings.message_threshold is None
        else DetectionThresholdMessageBuilder(settings.message_threshold)
    )
    register_detect_task(
        app,
        lambda: DetectionPipeline(
            store=StoreClient(settings.storage_target),
            model=build_model(settings),
            output_cleaners=[ThresholdDetectionCleaner(settings.threshold)],
            message_builders=[builder],
        ),
    )
    return run_prefork_worker(
        app,
        Queue.DETECTION,
        name="detector",
        concurrency=settings.concurrency,
        log_level=settings.log_level,
    )


def self_check(
    settings: DetectorSettings, bundled: AudioModel | None, program_config: dict[str, Any]
) -> list[CheckResult]:
    """The model's self-check; and whether the model the program asks for is the one running."""
    results = []
    section = read_section(program_config, "detection", DetectionConfig)
    if section is not None and section.model != settings.model:
        results.append(
            CheckResult(
                "model choice",
                False,
                f"the program's detection.model is {section.model!r} but the detector runs "
                f"{settings.model!r}: set DETECTOR_MODEL={section.model} and restart the detector, "
                "or change the program's setting",
            )
        )
    started = time.monotonic()
    if bundled is None:
        remote = RemoteModel(settings.model.removeprefix("grpc://"))
        try:
            remote.check()
            info = remote.info()
        except AcoustackError as exc:
            return [*results, CheckResult("model", False, str(exc))]
        finally:
            remote.close()
        detail = f"model server {remote.target} answers: {info.name} {info.version}"
        return [*results, CheckResult("model", True, detail)]
    check_file = Path(settings.check_file) if settings.check_file else None
    try:
        if check_file is not None:
            LocalModel(bundled, check_file=check_file).check()
            found = len(bundled.detect_file(check_file))
            what = f"found {found} call(s) in {check_file.name}"
        else:
            # No known recording: the model must at least run on audio end to end.
            noise = np.random.default_rng(0).normal(0, 0.01, 256_000).astype(np.float32)
            found = len(bundled.detect_audio(noise, 256_000))
            what = f"ran on 1 s of synthetic noise ({found} detections); set DETECTOR_CHECK_FILE "
            what += "to check against a known recording"
    except (AcoustackError, OSError) as exc:
        return [*results, CheckResult("model", False, str(exc))]
    elapsed = time.monotonic() - started
    detail = f"{bundled.name} {bundled.version} {what} in {elapsed:.1f} s"
    return [*results, CheckResult("model", True, detail)]
