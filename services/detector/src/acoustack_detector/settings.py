"""Detector settings, read once from DETECTOR_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from acoustack.config import BrokerSettings, StorageClientSettings

PREFIX = "DETECTOR"


class DetectorSettings(BrokerSettings, StorageClientSettings):
    model: Annotated[
        str,
        Field(
            pattern=r"^(batdetect2|grpc://[^/\s]+:\d+)$",
            description="batdetect2 (the bundled model) or grpc://host:port of a model server",
        ),
    ] = "batdetect2"
    model_dir: Annotated[
        Path | None,
        Field(description="the exported BatDetect2 (default: $ACOUSTACK_MODEL_DIR or build/model)"),
    ] = None
    model_send_audio: Annotated[
        bool,
        Field(description="stream audio to a model server that cannot see the recordings volume"),
    ] = False
    recordings_root: Annotated[
        Path,
        Field(description="the shared recordings volume; Model requests may name files under it"),
    ] = Path("/recordings")
    threshold: Annotated[
        float, Field(ge=0, le=1, description="detections and tags below this score are not stored")
    ] = 0.2
    message_threshold: Annotated[
        float | None,
        Field(
            ge=0,
            le=1,
            description="message only detections at least this confident; unset: the whole output",
        ),
    ] = None
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
    task_time_limit_s: Annotated[
        float,
        Field(gt=0, description="a detection running longer is stopped (soft limit; hard + 30 s)"),
    ] = 600.0
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
