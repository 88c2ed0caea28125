"""Recorder settings, read once from RECORDER_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from acoustack.config import BrokerSettings, StorageClientSettings
from acoustack.program_config import parse_sun_window, parse_windows

PREFIX = "RECORDER"


class RecorderSettings(BrokerSettings, StorageClientSettings):
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
    samplerate_hz: Annotated[
        int, Field(gt=0, le=1_000_000, description="capture rate in Hz, up to 384000 for bats")
    ] = 384_000
    channels: Annotated[int, Field(ge=1, le=8, description="input channels")] = 1
    chunk_frames: Annotated[
        int, Field(ge=64, le=1_048_576, description="frames per read from the device")
    ] = 4096
    duration_s: Annotated[
        float, Field(gt=0, le=3600, description="length of each recording in seconds")
    ] = 3.0
    time_expansion: Annotated[
        float,
        Field(gt=0, le=100, description="1 for real time; 10 writes a 10x slower header rate"),
    ] = 1.0
    temp_dir: Annotated[
        Path, Field(description="temporary area for new recordings (RAM-backed spares the SD card)")
    ] = Path("/dev/shm/acoustack")
    fallback_temp_dir: Annotated[
        Path, Field(description="used when temp_dir cannot be written")
    ] = Path("/data/recordings/tmp")
    data_dir: Annotated[
        Path, Field(description="persistent data volume (device id, quarantine)")
    ] = Path("/data")
    disk_path: Annotated[
        Path | None,
        Field(
            description="file system that must keep min_free_disk_mb free (where saved recordings "
            "go); unset: the temporary area. When set, the temporary area need only hold the next "
            "recordings (a small RAM area)"
        ),
    ] = None
    source_id: Annotated[
        str,
        Field(
            pattern=r"^[A-Za-z0-9_.-]{1,40}$",
            description="this recorder instance (one per microphone)",
        ),
    ] = "mic-0"
    daily_windows: Annotated[
        str,
        Field(
            description="local-time windows to record in, e.g. 20:00-06:00,04:00-06:00; empty: all day"
        ),
    ] = ""
    timezone: Annotated[
        str, Field(description="IANA time zone of daily_windows, e.g. Europe/London")
    ] = "UTC"
    sun_window: Annotated[
        str, Field(description="record around a sun event at the deployment, e.g. dusk-30m+3h")
    ] = ""
    min_free_disk_mb: Annotated[
        int, Field(ge=0, description="stop recording below this much free disk")
    ] = 500
    failure_threshold: Annotated[
        int, Field(ge=1, description="failures in a row before health turns NOT_SERVING")
    ] = 3
    health_port: Annotated[int, Field(ge=0, le=65535, description="gRPC health port")] = 50053
    make: str = "unknown"
    model: str = "unknown"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("daily_windows")
    @classmethod
    def _windows(cls, value: str) -> str:
        parse_windows(value)
        return value

    @field_validator("sun_window")
    @classmethod
    def _sun(cls, value: str) -> str:
        parse_sun_window(value)
        return value
