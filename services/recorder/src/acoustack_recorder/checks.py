"""The recorder's self-check (`acoustack check`, and before a deployment starts): a test recording
with the source and the program's `recording` section, written as a real recording would be and
read back, and the free space where recordings go."""

from __future__ import annotations

import datetime as dt
import math
import operator
import tempfile
import uuid
import wave
from pathlib import Path
from typing import Any

from acoustack import __version__
from acoustack.errors import AcoustackError, ConfigError
from acoustack.program_config import RecordingConfig, read_section
from acoustack.self_check import CheckResult
from acoustack_recorder.recorder import temporary_area
from acoustack_recorder.settings import RecorderSettings
from acoustack_recorder.wavfile import GuanoFields, Pcm, write_recording
from acoustack_recorder.wiring import build_source, disk_conditions


def _level_dbfs(samples: Pcm) -> tuple[float, float]:
    """Peak and RMS level in dB relative to full scale (16-bit)."""
    values = samples.samples()
    peak = max(-min(values), max(values)) / 32768.0 if values else 0.0
    rms = (
        math.sqrt(sum(map(operator.mul, values, values)) / len(values)) / 32768.0 if values else 0.0
    )
    floor = 1e-12
    return 20 * math.log10(max(peak, floor)), 20 * math.log10(max(rms, floor))


def self_check(settings: RecorderSettings, program_config: dict[str, Any]) -> list[CheckResult]:
    """A test recording with the configured source and settings, written as a real recording
    would be and read back; and the free space in the temporary area."""
    try:
        section = read_section(program_config, "recording", RecordingConfig) or RecordingConfig()
    except AcoustackError as exc:
        return [CheckResult("test recording", False, str(exc))]
    results = []
    try:
        temp_dir = temporary_area(settings.temp_dir, settings.temp_fallback_dir)
    except AcoustackError as exc:
        return [CheckResult("temporary area", False, str(exc))]
    for free in disk_conditions(settings, section, temp_dir):
        verdict = free.check(None, None)
        results.append(CheckResult(free.what, bool(verdict), f"{free.path}: {verdict.reason}"))
    duration = min(1.0, section.duration_s)
    try:
        source = build_source(settings, section)
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
            time_expansion=section.time_expansion,
            length_s=len(samples) / source.samplerate_hz,
            make=settings.microphone_make,
            model=settings.microphone_model,
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
        f"{frames / rate * section.time_expansion:.2f} s at {source.samplerate_hz} Hz, "
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
