"""Detector settings, read once from DETECTOR_* environment variables: wiring only.

Which model runs, its thresholds and what is messaged are the program's `detection` section, sent
with every `detect` task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from acoustack.config import (
    TIME_LIMITS_MOVED,
    BrokerSettings,
    MetricsSettings,
    StorageClientSettings,
    env_field,
    program_field,
)

PREFIX = "DETECTOR"


class DetectorSettings(BrokerSettings, StorageClientSettings, MetricsSettings):
    model_dir: Annotated[
        Path | None,
        env_field("ACOUSTACK_MODEL_DIR", "the exported BatDetect2 (unset: build/model)"),
    ] = None
    recordings_root: Annotated[
        Path,
        Field(description="the shared recordings volume; Model requests may name files under it"),
    ] = Path("/recordings")
    grpc_host: Annotated[
        str, Field(description="address the Model and health services listen on")
    ] = "0.0.0.0"
    grpc_port: Annotated[
        int, Field(ge=0, le=65535, description="port of the Model and health services")
    ] = 50052
    max_message_mb: Annotated[
        int, Field(ge=1, le=1024, description="largest gRPC message, MiB")
    ] = 64
    max_audio_mb: Annotated[
        int, Field(ge=1, le=4096, description="largest streamed audio, MiB")
    ] = 256
    concurrency: Annotated[
        int, Field(ge=1, le=16, description="detections run at once (worker processes)")
    ] = 1
    check_file: Annotated[
        str,
        Field(
            description="a recording the bundled model must find a bat call in (the self-check); "
            "empty: the check only runs the model on synthetic audio"
        ),
    ] = ""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    removed: ClassVar[dict[str, str]] = {
        "DETECTOR_MODEL": program_field("detection.model"),
        "DETECTOR_MODEL_SEND_AUDIO": program_field("detection.model_send_audio"),
        "DETECTOR_THRESHOLD": program_field("detection.threshold"),
        "DETECTOR_MESSAGE_THRESHOLD": program_field("detection.message_threshold"),
        "DETECTOR_MODEL_DIR": "renamed ACOUSTACK_MODEL_DIR (the same name as `acoustack detect`'s)",
        "DETECTOR_TASK_TIME_LIMIT_S": TIME_LIMITS_MOVED,
    }
