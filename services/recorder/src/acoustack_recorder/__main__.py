"""Entry point: `python -m acoustack_recorder`. A Celery worker on queue `recording` (one slot at a
time), a gRPC health server that follows the recorder's health, and a reconcile at start."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

from acoustack import __version__
from acoustack.celery_app import create_app
from acoustack.clients import StoreClient
from acoustack.config import load_service_settings
from acoustack.errors import ConfigError
from acoustack.grpc_server import start_server
from acoustack.identity import device_id
from acoustack.names import Queue
from acoustack_recorder.conditions import (
    AllOf,
    DailyWindow,
    DailyWindows,
    FreeDiskSpace,
    SunWindow,
)
from acoustack_recorder.config import PREFIX, RecorderSettings, parse_sun_window, parse_windows
from acoustack_recorder.recorder import DeviceInfo, Health, Recorder, temporary_area
from acoustack_recorder.sources import (
    DeviceUnavailableError,
    MicrophoneSource,
    ReplaySource,
    SyntheticSource,
    list_input_devices,
)
from acoustack_recorder.worker import detection_handoff, register_record_task

log = logging.getLogger("acoustack_recorder")


def build_source(settings: RecorderSettings, pyaudio_module=None):
    if settings.source == "auto":
        try:
            devices = list_input_devices(pyaudio_module)
        except DeviceUnavailableError as exc:
            devices = []
            log.info("no microphone (%s)", exc)
        if not devices:
            log.info("no input device: replaying %s", settings.replay_dir)
            return ReplaySource(settings.replay_dir, settings.samplerate_hz)
        device = settings.device or devices[0].index
        log.info("recording from %s", settings.device or devices[0].name)
        return MicrophoneSource(
            device,
            settings.samplerate_hz,
            settings.channels,
            settings.chunk_frames,
            pyaudio_module=pyaudio_module,
        )
    if settings.source == "microphone":
        if not settings.device:
            raise ConfigError(
                "RECORDER_DEVICE: required for the microphone source (see `acoustack devices`)"
            )
        device = int(settings.device) if settings.device.isdigit() else settings.device
        return MicrophoneSource(
            device, settings.samplerate_hz, settings.channels, settings.chunk_frames
        )
    if settings.source == "synthetic":
        return SyntheticSource(settings.samplerate_hz, settings.channels, real_time=True)
    return ReplaySource(settings.replay_dir, settings.samplerate_hz)


def build_conditions(settings: RecorderSettings, temp_dir: Path) -> AllOf:
    conditions = []
    windows = parse_windows(settings.daily_windows)
    if windows:
        conditions.append(DailyWindows([DailyWindow(a, b) for a, b in windows], settings.timezone))
    sun = parse_sun_window(settings.sun_window)
    if sun:
        conditions.append(SunWindow(sun[0], sun[1], sun[2]))
    if settings.min_free_disk_mb:
        conditions.append(FreeDiskSpace(temp_dir, settings.min_free_disk_mb * 1024 * 1024))
    return AllOf(conditions)


def main() -> int:
    settings = load_service_settings(RecorderSettings, PREFIX, "acoustack-recorder")
    try:
        source = build_source(settings)
    except ConfigError as exc:
        print(f"acoustack-recorder: {exc}", file=sys.stderr)
        return 2
    temp_dir = temporary_area(settings.temp_dir, settings.fallback_temp_dir)
    app = create_app(settings.broker_url)
    store = StoreClient(settings.storage_target)
    health = Health(failure_threshold=settings.failure_threshold)
    device = DeviceInfo(
        device_id(settings.data_dir),
        make=settings.make,
        model=settings.model,
        firmware=f"acoustack {__version__}",
    )
    log.info(
        "device %s, source %s (%s), temporary area %s",
        device.device_id,
        settings.source_id,
        settings.source,
        temp_dir,
    )
    register_record_task(
        app,
        lambda: Recorder(
            store=store,
            source=source,
            temp_dir=temp_dir,
            device=device,
            source_id=settings.source_id,
            duration_s=settings.duration_s,
            time_expansion=settings.time_expansion,
            conditions=build_conditions(settings, temp_dir),
            hand_to_detection=detection_handoff(app),
            health=health,
            quarantine_dir=settings.data_dir / "quarantine",
        ),
    )
    server = start_server([], address=f"0.0.0.0:{settings.health_port}", max_workers=2)
    stop = threading.Event()

    def follow_health() -> None:
        serving = True
        while not stop.wait(1.0):
            if health.healthy != serving:
                serving = health.healthy
                log.warning(
                    "health: %s (%s)",
                    "SERVING" if serving else "NOT_SERVING",
                    health.last_failure_reason,
                )
                server.set_serving(serving)

    threading.Thread(target=follow_health, daemon=True).start()
    worker = app.Worker(
        queues=[Queue.RECORDING.value],
        concurrency=1,
        pool="solo",
        hostname=f"recorder-{settings.source_id}@%h",
        loglevel=settings.log_level,
        # A recorder takes orders only from its queue: no cluster gossip, start-up sync or event
        # heartbeats (less memory and traffic on a Pi; the broker connection keeps its own).
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
    )
    try:
        worker.start()  # returns on SIGTERM/SIGINT after the slot in progress ends (warm shutdown)
    finally:
        stop.set()
        server.stop(5)
        store.close()
    return worker.exitcode or 0


if __name__ == "__main__":
    sys.exit(main())
