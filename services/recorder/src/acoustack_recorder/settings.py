"""Recorder settings, read once from RECORDER_* environment variables: wiring only.

How and when to record (duration, rate, channels, time expansion, windows, free disk) is the
program's `recording` section, sent with every `record` task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from acoustack.config import (
    BrokerSettings,
    MetricsSettings,
    StorageClientSettings,
    TemporaryAreaSettings,
    program_field,
)

PREFIX = "RECORDER"


class RecorderSettings(
    BrokerSettings, StorageClientSettings, TemporaryAreaSettings, MetricsSettings
):
    source: Annotated[
        Literal["auto", "replay", "microphone", "synthetic"],
        Field(
            description="where audio comes from; auto: the microphone if there is one, else replay"
        ),
    ] = "auto"
    replay_dir: Annotated[
        Path, Field(description="folder of WAV files the replay source plays in a loop")
    ] = Path("/opt/acoustack/audio")
    synthetic_real_time: Annotated[
        bool,
        Field(
            description="synthetic source: take as long as the audio lasts (false: as fast as it "
            "can, for benchmarks)"
        ),
    ] = True
    device: Annotated[
        str,
        Field(
            description="microphone name (a part of it) or index; `acoustack devices` lists them"
        ),
    ] = ""
    chunk_frames: Annotated[
        int, Field(ge=64, le=1_048_576, description="frames per read from the device")
    ] = 4096
    data_dir: Annotated[
        Path,
        Field(description="persistent data volume (the device id learned, health, quarantine)"),
    ] = Path("/data")
    disk_path: Annotated[
        Path | None,
        Field(
            description="file system that must keep recording.min_free_disk_mb free (where saved "
            "recordings go); unset: the temporary area. When set, the temporary area need only "
            "hold the next recordings (a small RAM area)"
        ),
    ] = None
    source_id: Annotated[
        str,
        Field(
            pattern=r"^[A-Za-z0-9_.-]{1,40}$",
            description="this recorder instance (one per microphone)",
        ),
    ] = "mic-0"
    health_port: Annotated[int, Field(ge=0, le=65535, description="gRPC health port")] = 50053
    microphone_make: Annotated[
        str, Field(description="the microphone's make, written to GUANO (Make)")
    ] = "unknown"
    microphone_model: Annotated[
        str, Field(description="the microphone's model, written to GUANO (Model)")
    ] = "unknown"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    removed: ClassVar[dict[str, str]] = {
        "RECORDER_SAMPLERATE_HZ": program_field("recording.samplerate_hz"),
        "RECORDER_CHANNELS": program_field("recording.channels"),
        "RECORDER_DURATION_S": program_field("recording.duration_s"),
        "RECORDER_TIME_EXPANSION": program_field("recording.time_expansion"),
        "RECORDER_DAILY_WINDOWS": program_field("recording.daily_windows"),
        "RECORDER_TIMEZONE": program_field("recording.timezone"),
        "RECORDER_SUN_WINDOW": program_field("recording.sun_window"),
        "RECORDER_MIN_FREE_DISK_MB": program_field("recording.min_free_disk_mb"),
        "RECORDER_MAKE": "renamed RECORDER_MICROPHONE_MAKE",
        "RECORDER_MODEL": "renamed RECORDER_MICROPHONE_MODEL",
        "RECORDER_FAILURE_THRESHOLD": "health turns NOT_SERVING after "
        "acoustack_recorder.recorder.FAILURE_THRESHOLD failed slots in a row",
    }
