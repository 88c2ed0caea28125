"""The recorder's parts, built from its settings and the program's `recording` section: the
source, the conditions, the device identity (learned from storage), and the processes they run in:
the worker (this service's main process, with the prefork pool so a hung device is stopped by the
task's time limit) and, in its pool child, the recording itself and the gRPC server (health,
SelfCheck). `python -m acoustack_recorder` (``__main__``) starts the worker.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from celery.signals import worker_process_shutdown

from acoustack import __version__
from acoustack import self_check as self_check_service
from acoustack.celery_app import create_app
from acoustack.clients import StoreClient
from acoustack.errors import ConfigError
from acoustack.grpc_server import RunningServer, start_server
from acoustack.identity import LearnedIdentity
from acoustack.names import Queue
from acoustack.program_config import RecordingConfig
from acoustack.time_windows import recording_windows
from acoustack.worker_process import (
    pool_children_die_with_parent,
    run_prefork_worker,
    serve_from_pool_child,
)
from acoustack_recorder.conditions import (
    AllOf,
    FreeDiskSpace,
)
from acoustack_recorder.recorder import (
    FAILURE_THRESHOLD,
    DeviceInfo,
    Health,
    Recorder,
    temporary_area,
)
from acoustack_recorder.registration import Registrar
from acoustack_recorder.settings import RecorderSettings
from acoustack_recorder.sources import (
    DeviceUnavailableError,
    MicrophoneSource,
    ReplaySource,
    SyntheticSource,
    list_input_devices,
)
from acoustack_recorder.tasks import Reconfigure, detection_handoff, register_record_task

log = logging.getLogger("acoustack_recorder")


def build_source(settings: RecorderSettings, section: RecordingConfig, pyaudio_module=None):
    """The source the settings name, at the section's rate and channels."""
    rate, channels = section.samplerate_hz, section.channels
    if settings.source == "auto":
        try:
            devices = list_input_devices(pyaudio_module)
        except DeviceUnavailableError as exc:
            devices = []
            log.info("no microphone (%s)", exc)
        if not devices:
            log.info("no input device: replaying %s", settings.replay_dir)
            return ReplaySource(settings.replay_dir, rate, channels=channels)
        device = settings.device or devices[0].index
        log.info("recording from %s", settings.device or devices[0].name)
        return MicrophoneSource(
            device, rate, channels, settings.chunk_frames, pyaudio_module=pyaudio_module
        )
    if settings.source == "microphone":
        if not settings.device:
            raise ConfigError(
                "RECORDER_DEVICE: required for the microphone source (see `acoustack devices`)"
            )
        device = int(settings.device) if settings.device.isdigit() else settings.device
        return MicrophoneSource(device, rate, channels, settings.chunk_frames)
    if settings.source == "synthetic":
        return SyntheticSource(rate, channels, real_time=settings.synthetic_real_time)
    return ReplaySource(settings.replay_dir, rate, channels=channels)


def disk_conditions(
    settings: RecorderSettings, section: RecordingConfig, temp_dir: Path
) -> list[FreeDiskSpace]:
    """min_free_disk_mb on the disk that keeps the recordings; and, when that is not the temporary
    area (a RAM area of its own), room there for the next few recordings."""
    minimum_mb = section.min_free_disk_mb
    if settings.disk_path is None:
        return [FreeDiskSpace(temp_dir, minimum_mb * 1024 * 1024)] if minimum_mb else []
    one_recording = int(section.duration_s * section.samplerate_hz * section.channels * 2)
    return [
        *([FreeDiskSpace(settings.disk_path, minimum_mb * 1024 * 1024)] if minimum_mb else []),
        FreeDiskSpace(temp_dir, TEMP_AREA_RECORDINGS * one_recording, what="temporary area"),
    ]


def build_conditions(settings: RecorderSettings, section: RecordingConfig, temp_dir: Path) -> AllOf:
    """The recording conditions of the program's section."""
    return AllOf(
        [
            *recording_windows(section.daily_windows, section.timezone, section.sun_window),
            *disk_conditions(settings, section, temp_dir),
        ]
    )


# The temporary area must hold this many recordings when it is not the disk that keeps them.
TEMP_AREA_RECORDINGS = 4


def health_state_file(settings: RecorderSettings) -> Path:
    return settings.data_dir / "recorder-health.json"


def device_info(settings: RecorderSettings, identity: LearnedIdentity) -> DeviceInfo:
    return DeviceInfo(
        identity.get,
        make=settings.microphone_make,
        model=settings.microphone_model,
        firmware=f"acoustack {__version__}",
    )


def reconfigure_from(settings: RecorderSettings) -> Reconfigure:
    """Apply a program's recording section to the recorder, rebuilding only what changed."""
    applied: list[RecordingConfig] = []

    def apply(recorder: Recorder, section: RecordingConfig) -> None:
        if applied and applied[0] == section:
            return
        recorder.duration_s = section.duration_s
        recorder.time_expansion = section.time_expansion
        recorder.conditions = build_conditions(settings, section, recorder.temp_dir)
        source = recorder.source
        if (source.samplerate_hz, source.channels) != (section.samplerate_hz, section.channels):
            source.close()
            recorder.source = build_source(settings, section)
        log.info(
            "recording: %g s at %d Hz, %d channel(s)%s",
            section.duration_s,
            section.samplerate_hz,
            section.channels,
            f", windows {section.daily_windows} {section.timezone}"
            if section.daily_windows
            else "",
        )
        applied[:] = [section]

    return apply


def serve_health_from_pool_child(settings: RecorderSettings, follow_every_s: float = 1.0) -> None:
    """Once the pool child is forked: its gRPC server (health following the recorder's saved
    state, SelfCheck), stopped when the child ends."""
    stop = threading.Event()

    def follow_health(server: RunningServer) -> None:
        state_file = health_state_file(settings)
        serving = True
        while not stop.wait(follow_every_s):
            health = Health.read(state_file, FAILURE_THRESHOLD)
            if health.healthy != serving:
                serving = health.healthy
                log.warning(
                    "health: %s (%s)",
                    "SERVING" if serving else "NOT_SERVING",
                    health.last_failure_reason,
                )
                server.set_serving(serving)

    def start() -> RunningServer:
        from acoustack_recorder.checks import self_check  # it builds sources with this module

        server = start_server(
            [self_check_service.register(lambda config: self_check(settings, config))],
            address=f"0.0.0.0:{settings.health_port}",
            max_workers=4,
        )
        threading.Thread(target=follow_health, args=(server,), daemon=True).start()
        log.info("gRPC (health, SelfCheck) on port %d; source %s", server.port, settings.source)
        return server

    serve_from_pool_child(start)
    worker_process_shutdown.connect(lambda **_: stop.set(), weak=False)


def run_worker(settings: RecorderSettings) -> int:
    """The Celery worker on queue `recording`, in this process: prefork, one child, so the record
    task's time limit is enforced. Everything that talks gRPC or opens the device is made in the
    child, which also serves health and SelfCheck."""
    temp_dir = temporary_area(settings.temp_dir, settings.temp_fallback_dir)
    pool_children_die_with_parent()
    serve_health_from_pool_child(settings)
    app = create_app(settings.broker_url)

    def make_recorder(section: RecordingConfig) -> Recorder:
        store = StoreClient(settings.storage_target)
        recorder = Recorder(
            store=store,
            source=build_source(settings, section),
            temp_dir=temp_dir,
            device=device_info(settings, store.learned_identity(settings.data_dir)),
            source_id=settings.source_id,
            duration_s=section.duration_s,
            time_expansion=section.time_expansion,
            conditions=build_conditions(settings, section, temp_dir),
            hand_to_detection=detection_handoff(app),
            # From what the previous pool child saved: one killed while the device failed
            # must not leave health NOT_SERVING after its replacement records well again.
            health=Health.read(health_state_file(settings), FAILURE_THRESHOLD),
            quarantine_dir=settings.data_dir / "quarantine",
        )
        # Slots never wait on storage: registration and hand-over run in a thread of their own.
        recorder.registrar = Registrar(catch_up=recorder.reconcile)
        return recorder

    register_record_task(app, make_recorder, reconfigure_from(settings))
    return run_prefork_worker(
        app, Queue.RECORDING, name=f"recorder-{settings.source_id}", log_level=settings.log_level
    )
