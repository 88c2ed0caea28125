"""Test inputs made from the bundled recordings, the same bytes wherever they are made.

Used twice: by model_build/reference.py in the build environment (to run batdetect2 on them and
write the fixtures) and by the tests (to run acoustack's detector on them). Only numpy, the
standard library and this package's resampler are imported, so both environments can. Resampling
here is done in float64 and rounded to 16-bit PCM: summation-order differences between BLAS builds
are far below half a PCM step, so the files come out identical; each fixture records its input's
sha256 and the tests check it.
"""

from __future__ import annotations

import hashlib
import os
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from acoustack_detector.resample import resample

# The example recordings of BatDetect2 (see tests/data/audio/README.md), 16-bit mono.
RECORDINGS = (
    "20170701_213954-MYOMYS-LR_0_0.5.wav",  # 500 kHz
    "20180530_213516-EPTSER-LR_0_0.5.wav",  # 384 kHz
    "20180627_215323-RHIFER-LR_0_0.5.wav",  # 384 kHz
)
# Fixture names of the recordings: the species code in the file name.
RECORDING_FIXTURES = {Path(name).stem.split("-")[1].lower(): name for name in RECORDINGS}
# The recording the capture-rate, stereo, time-expansion and short-file cases are made from.
VARIANT_SOURCE = RECORDINGS[1]
CAPTURE_RATES_HZ = (192_000, 250_000, 256_000, 384_000, 500_000)

# The long file: the recordings brought to one rate and repeated in turn, started a quarter second
# in so that batdetect2's 3 s chunk boundaries fall inside recordings, not between them.
LONG_RATE_HZ = 384_000
LONG_OFFSET_S = 0.25
LONG_DURATION_S = 7.5

# The issue's tolerances for "the same detection" as batdetect2's (plus the same class).
TIME_TOLERANCE_S = 0.001
FREQ_TOLERANCE_HZ = 500
DET_PROB_TOLERANCE = 0.01

SHORT_DURATION_S = 0.05  # far shorter than one chunk and than the spectrogram's minimum width
SILENT_RATE_HZ = 384_000
SILENT_DURATION_S = 1.0


def sha256_of(path: str | os.PathLike[str]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_pcm16(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """[frames, channels] int16 and the sample rate (16-bit PCM files only)."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit PCM")
        frames = wav.readframes(wav.getnframes())
        samples = np.frombuffer(frames, dtype="<i2").reshape(-1, wav.getnchannels())
        return samples, wav.getframerate()


def write_pcm16(path: str | os.PathLike[str], samples: np.ndarray, samplerate_hz: int) -> Path:
    """Write int16 [frames] or [frames, channels] as a plain PCM WAV file."""
    samples = np.asarray(samples, dtype="<i2")
    if samples.ndim == 1:
        samples = samples[:, np.newaxis]
    path = Path(path)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(samples.shape[1])
        wav.setsampwidth(2)
        wav.setframerate(samplerate_hz)
        wav.writeframes(np.ascontiguousarray(samples).tobytes())
    return path


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(samples * 32768.0), -32768, 32767).astype(np.int16)


def at_rate(path: str | os.PathLike[str], samplerate_hz: int) -> np.ndarray:
    """The first channel of a 16-bit recording at another rate, as int16 (float64 resampling)."""
    samples, rate = read_pcm16(path)
    mono = samples[:, 0].astype(np.float64) / 32768.0
    if rate == samplerate_hz:
        return samples[:, 0].copy()
    return to_pcm16(resample(mono, rate, samplerate_hz))


def make_rate_variant(audio_dir: Path, samplerate_hz: int, out_path: Path) -> Path:
    return write_pcm16(out_path, at_rate(audio_dir / VARIANT_SOURCE, samplerate_hz), samplerate_hz)


def make_long_recording(
    audio_dir: Path,
    out_path: Path,
    *,
    duration_s: float = LONG_DURATION_S,
    offset_s: float = LONG_OFFSET_S,
) -> Path:
    """The recordings at LONG_RATE_HZ, in RECORDINGS order, repeated until ``duration_s``."""
    pieces = [at_rate(audio_dir / name, LONG_RATE_HZ) for name in RECORDINGS]
    cycle = np.concatenate(pieces)
    start = round(offset_s * LONG_RATE_HZ)
    length = round(duration_s * LONG_RATE_HZ)
    repeats = -(-(start + length) // cycle.size)
    joined = np.tile(cycle, repeats)[start : start + length]
    return write_pcm16(out_path, joined, LONG_RATE_HZ)


def make_short_recording(audio_dir: Path, out_path: Path) -> Path:
    samples, rate = read_pcm16(audio_dir / VARIANT_SOURCE)
    return write_pcm16(out_path, samples[: round(SHORT_DURATION_S * rate), 0], rate)


def make_silent_recording(out_path: Path) -> Path:
    frames = round(SILENT_DURATION_S * SILENT_RATE_HZ)
    return write_pcm16(out_path, np.zeros(frames, dtype=np.int16), SILENT_RATE_HZ)


def make_time_expanded(audio_dir: Path, out_path: Path, factor: int = 10) -> Path:
    """The variant source written with its rate divided by ``factor`` (a time-expansion device)."""
    samples, rate = read_pcm16(audio_dir / VARIANT_SOURCE)
    if rate % factor:
        raise ValueError(f"{rate} Hz is not divisible by {factor}")
    return write_pcm16(out_path, samples, rate // factor)


def make_stereo(audio_dir: Path, out_path: Path, *, source_channel: int) -> Path:
    """Two channels at the variant source's rate: the source in ``source_channel``, another
    recording (resampled to the same rate) in the other."""
    source, rate = read_pcm16(audio_dir / VARIANT_SOURCE)
    other = at_rate(audio_dir / RECORDINGS[0], rate)
    frames = min(source.shape[0], other.shape[0])
    stereo = np.empty((frames, 2), dtype=np.int16)
    stereo[:, source_channel] = source[:frames, 0]
    stereo[:, 1 - source_channel] = other[:frames]
    return write_pcm16(out_path, stereo, rate)


def generated_inputs(audio_dir: Path, out_dir: Path) -> dict[str, Path]:
    """Every generated input that has a batdetect2 fixture, by fixture name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs = {"long": make_long_recording(audio_dir, out_dir / "long.wav")}
    source_rate = read_pcm16(audio_dir / VARIANT_SOURCE)[1]
    for rate in CAPTURE_RATES_HZ:
        if rate != source_rate:
            name = f"rate_{rate // 1000}k"
            inputs[name] = make_rate_variant(audio_dir, rate, out_dir / f"{name}.wav")
    inputs["short"] = make_short_recording(audio_dir, out_dir / "short.wav")
    inputs["silent"] = make_silent_recording(out_dir / "silent.wav")
    return inputs


def _sort_key(detection: dict) -> tuple:
    return (
        detection["start_time"],
        detection["low_freq"],
        detection["high_freq"],
        detection["class"],
    )


def same_detection(ours: dict, theirs: dict) -> bool:
    """Two detections in batdetect2's fields are the same call within the tolerances."""
    return (
        ours["class"] == theirs["class"]
        and abs(ours["start_time"] - theirs["start_time"]) <= TIME_TOLERANCE_S
        and abs(ours["end_time"] - theirs["end_time"]) <= TIME_TOLERANCE_S
        and abs(ours["low_freq"] - theirs["low_freq"]) <= FREQ_TOLERANCE_HZ
        and abs(ours["high_freq"] - theirs["high_freq"]) <= FREQ_TOLERANCE_HZ
        and abs(ours["det_prob"] - theirs["det_prob"]) <= DET_PROB_TOLERANCE
    )


def unmatched(ours: Sequence[dict], theirs: Sequence[dict]) -> tuple[list[dict], list[dict]]:
    """Pair the two sets of detections in sorted order (calls at the same time can come out in
    either order), each with the first still-unpaired one it matches; return what is left over
    on each side: ``(only ours, only theirs)``."""
    left = sorted(ours, key=_sort_key)
    missing = []
    for reference in sorted(theirs, key=_sort_key):
        match = next(
            (i for i, candidate in enumerate(left) if same_detection(candidate, reference)), None
        )
        if match is None:
            missing.append(reference)
        else:
            del left[match]
    return left, missing


def unmatched_exactly(ours: Sequence[dict], theirs: Sequence[dict]) -> list[dict]:
    """Their detections that have no equal (every field, after batdetect2's rounding) in ours."""
    left = list(ours)
    missing = []
    for reference in theirs:
        if reference in left:
            left.remove(reference)
        else:
            missing.append(reference)
    return missing
