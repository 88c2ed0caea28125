"""The recorder service's parts that run in processes: the worker (this service's main process,
with the prefork pool so a hung device is stopped by the task's time limit) and, in its pool child,
the recording itself and the gRPC server (health, SelfCheck). `python -m acoustack_recorder`
(``__main__``) starts the worker.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import threading
import uuid
import wave
from pathlib import Path
from typing import Any

import numpy as np
from celery.signals import worker_process_init, worker_process_shutdown

from acoustack import __version__
from acoustack import self_check as self_check_service
from acoustack.celery_app import create_app
from acoustack.clients import StoreClient
from acoustack.errors import AcoustackError, ConfigError
from acoustack.grpc_server import RunningServer, start_server
from acoustack.identity import device_id
from acoustack.names import Queue
from acoustack.program_config import RecordingConfig, read_section
from acoustack.self_check import CheckResult
from acoustack.time_windows import recording_windows
from acoustack.worker_process import pool_children_die_with_parent, run_prefork_worker
from acoustack_recorder.conditions import (
    AllOf,
    FreeDiskSpace,
)
from acoustack_recorder.recorder import DeviceInfo, Health, Recorder, temporary_area
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
from acoustack_recorder.wavfile import GuanoFields, write_recording

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
        return SyntheticSource(
            settings.samplerate_hz, settings.channels, real_time=settings.synthetic_real_time
        )
    return ReplaySource(settings.replay_dir, settings.samplerate_hz)


def disk_conditions(
    settings: RecorderSettings, section: RecordingConfig | None, temp_dir: Path
) -> list[FreeDiskSpace]:
    """min_free_disk_mb on the disk that keeps the recordings; and, when that is not the temporary
    area (a RAM area of its own), room there for the next few recordings."""
    effective = _with_section(settings, section)
    minimum_mb = section.min_free_disk_mb if section else settings.min_free_disk_mb
    if settings.disk_path is None:
        return [FreeDiskSpace(temp_dir, minimum_mb * 1024 * 1024)] if minimum_mb else []
    one_recording = int(effective.duration_s * effective.samplerate_hz * effective.channels * 2)
    return [
        *([FreeDiskSpace(settings.disk_path, minimum_mb * 1024 * 1024)] if minimum_mb else []),
        FreeDiskSpace(temp_dir, TEMP_AREA_RECORDINGS * one_recording, what="temporary area"),
    ]


def build_conditions(
    settings: RecorderSettings, section: RecordingConfig | None, temp_dir: Path
) -> AllOf:
    """The recording conditions: the program's section where there is one, else the settings."""
    where = section or settings
    return AllOf(
        [
            *recording_windows(where.daily_windows, where.timezone, where.sun_window),
            *disk_conditions(settings, section, temp_dir),
        ]
    )


# The temporary area must hold this many recordings when it is not the disk that keeps them.
TEMP_AREA_RECORDINGS = 4


def health_state_file(settings: RecorderSettings) -> Path:
    return settings.data_dir / "recorder-health.json"


def device_info(settings: RecorderSettings) -> DeviceInfo:
    return DeviceInfo(
        device_id(settings.data_dir),
        make=settings.make,
        model=settings.model,
        firmware=f"acoustack {__version__}",
    )


def _with_section(settings: RecorderSettings, section: RecordingConfig | None) -> RecorderSettings:
    """The service's settings with the program's recording section laid over them."""
    if section is None:
        return settings
    return settings.model_copy(
        update={
            "samplerate_hz": section.samplerate_hz,
            "channels": section.channels,
            "duration_s": section.duration_s,
            "time_expansion": section.time_expansion,
        }
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
            recorder.source = build_source(_with_section(settings, section))
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


def serve_from_pool_child(settings: RecorderSettings, follow_every_s: float = 1.0) -> None:
    """Once a pool child is forked: its gRPC server (health following the recorder's saved
    state, SelfCheck), stopped when the child ends."""
    running: list[RunningServer] = []
    stop = threading.Event()

    def follow_health(server: RunningServer) -> None:
        state_file = health_state_file(settings)
        serving = True
        while not stop.wait(follow_every_s):
            health = Health.read(state_file, settings.failure_threshold)
            if health.healthy != serving:
                serving = health.healthy
                log.warning(
                    "health: %s (%s)",
                    "SERVING" if serving else "NOT_SERVING",
                    health.last_failure_reason,
                )
                server.set_serving(serving)

    @worker_process_init.connect(weak=False)
    def start(**_: Any) -> None:
        try:
            server = start_server(
                [self_check_service.register(lambda config: self_check(settings, config))],
                address=f"0.0.0.0:{settings.health_port}",
                max_workers=4,
            )
        except OSError as exc:
            # Raising would make the pool replace this child again and again; recording goes
            # on, and the health check (unreachable) tells the operator.
            log.error("health and SelfCheck not served: %s", exc)
            return
        running.append(server)
        threading.Thread(target=follow_health, args=(server,), daemon=True).start()
        log.info("gRPC (health, SelfCheck) on port %d; source %s", server.port, settings.source)

    @worker_process_shutdown.connect(weak=False)
    def finish(**_: Any) -> None:
        stop.set()
        for server in running:
            server.set_serving(False)
            server.stop(5)


def run_worker(settings: RecorderSettings) -> int:
    """The Celery worker on queue `recording`, in this process: prefork, one child, so the record
    task's time limit is enforced. Everything that talks gRPC or opens the device is made in the
    child, which also serves health and SelfCheck."""
    temp_dir = temporary_area(settings.temp_dir, settings.fallback_temp_dir)
    pool_children_die_with_parent()
    serve_from_pool_child(settings)
    app = create_app(settings.broker_url)

    def make_recorder() -> Recorder:
        recorder = Recorder(
            store=StoreClient(settings.storage_target),
            source=build_source(settings),
            temp_dir=temp_dir,
            device=device_info(settings),
            source_id=settings.source_id,
            duration_s=settings.duration_s,
            time_expansion=settings.time_expansion,
            conditions=build_conditions(settings, None, temp_dir),
            hand_to_detection=detection_handoff(app),
            # From what the previous pool child saved: one killed while the device failed
            # must not leave health NOT_SERVING after its replacement records well again.
            health=Health.read(health_state_file(settings), settings.failure_threshold),
            quarantine_dir=settings.data_dir / "quarantine",
        )
        # Slots never wait on storage: registration and hand-over run in a thread of their own.
        recorder.registrar = Registrar(catch_up=recorder.reconcile)
        return recorder

    register_record_task(app, make_recorder, reconfigure_from(settings))
    return run_prefork_worker(
        app, Queue.RECORDING, name=f"recorder-{settings.source_id}", log_level=settings.log_level
    )


def _level_dbfs(samples: np.ndarray) -> tuple[float, float]:
    """Peak and RMS level in dB relative to full scale (16-bit)."""
    values = samples.astype(np.float64) / 32768.0
    peak = float(np.max(np.abs(values))) if values.size else 0.0
    rms = float(np.sqrt(np.mean(values**2))) if values.size else 0.0
    floor = 1e-12
    return 20 * np.log10(max(peak, floor)), 20 * np.log10(max(rms, floor))


def self_check(settings: RecorderSettings, program_config: dict[str, Any]) -> list[CheckResult]:
    """A test recording with the configured source and settings, written as a real recording
    would be and read back; and the free space in the temporary area."""
    section = read_section(program_config, "recording", RecordingConfig)
    effective = _with_section(settings, section)
    results = []
    try:
        temp_dir = temporary_area(settings.temp_dir, settings.fallback_temp_dir)
    except AcoustackError as exc:
        return [CheckResult("temporary area", False, str(exc))]
    for free in disk_conditions(settings, section, temp_dir):
        verdict = free.check(None, None)
        results.append(CheckResult(free.what, bool(verdict), f"{free.path}: {verdict.reason}"))
    duration = min(1.0, effective.duration_s)
    try:
        source = build_source(effective)
    except (AcoustackError, ConfigError) as exc:
        return [*results, CheckResult("test recording", False, str(exc))]
    try:
        samples = source.record(duration)
    except AcoustackError as exc:
        return [*results, CheckResult("test recording", False, f"the source failed: {exc}")]
    finally:
        source.close()
    # Written where recordings go (same file system, same writer), in a folder of its own that
    # neither reconcile nor file management looks into.
    with tempfile.TemporaryDirectory(prefix=".check-", dir=temp_dir) as folder:
        guano = GuanoFields(
            timestamp=dt.datetime.now(dt.UTC),
            capture_samplerate_hz=source.samplerate_hz,
            time_expansion=effective.time_expansion,
            length_s=len(samples) / source.samplerate_hz,
            make=settings.make,
            model=settings.model,
            serial="check",
            firmware=f"acoustack {__version__}",
            deployment="check",
            deployment_id=uuid.uuid4(),
            device_id="check",
            source_id=settings.source_id,
            recording_id=uuid.uuid4(),
            latitude=None,
            longitude=None,
        )
        path = write_recording(Path(folder), samples, guano)
        with wave.open(str(path), "rb") as wav:
            frames, rate, channels = wav.getnframes(), wav.getframerate(), wav.getnchannels()
    peak, rms = _level_dbfs(samples)
    described = (
        f"{frames / rate * effective.time_expansion:.2f} s at {source.samplerate_hz} Hz, "
        f"{channels} channel(s), peak {peak:.0f} dBFS, RMS {rms:.0f} dBFS ({settings.source} source)"
    )
    if frames == 0:
        return [*results, CheckResult("test recording", False, "the source gave no audio")]
    if peak < -90:
        return [
            *results,
            CheckResult(
                "test recording",
                False,
                f"only silence ({described}): is the microphone connected, powered and unmuted?",
            ),
        ]
    return [*results, CheckResult("test recording", True, described)]
