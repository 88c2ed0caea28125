"""The synthetic deployment that both sides of the storage benchmark store.

Standard library only: this module is imported by acoustack_side.py (workspace venv) and by
reference_acoupi.py (acoupi's own venv), so both sides see exactly the same recordings, detections,
scores, tags and time-frequency boxes. Each recording's detections come from a random generator
seeded with the recording's index, so recording N is identical on both sides whatever the stage.

The shape follows acoupi's scripts/benchmark_metadata_store.py: a recording every 15 minutes (96 a
day), one model output per recording with 200 detections of 5 predicted tags each, and 20 timed calls
per operation.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

SEED = 20_240_601

RECORDINGS_PER_DAY = 96
DETECTIONS_PER_OUTPUT = 200
TAGS_PER_DETECTION = 5

# Recordings already in the store when the timed calls start.
STAGES: dict[str, int] = {
    "empty": 0,
    "1d": RECORDINGS_PER_DAY,
    "30d": RECORDINGS_PER_DAY * 30,
}

# As in acoupi's script: 20 new recordings stored one call each, then their 20 model outputs one call
# each, then 20 repetitions of loading 20 recordings (with their outputs) by path.
TIMED_BATCH = 20
LOAD_SAMPLE = 20
LOAD_REPETITIONS = 20

DEPLOYMENT_NAME = "bench"
DEPLOYMENT_LATITUDE = 51.5
DEPLOYMENT_LONGITUDE = -0.1
DEPLOYMENT_START = dt.datetime(2024, 6, 1, 20, 0, tzinfo=dt.UTC)
RECORDING_INTERVAL = dt.timedelta(minutes=15)
RECORDING_DURATION_S = 3.0
SAMPLERATE_HZ = 256_000
DEVICE_ID = "bench-device"
MODEL_NAME = "batdetect2"
MODEL_VERSION = "1.3.1"
# The detector finishes a little after the recording ends; this is the output's creation time.
DETECTOR_LATENCY = dt.timedelta(seconds=5)

TAG_KEY = "species"
SPECIES = (
    "Barbastella barbastellus",
    "Eptesicus serotinus",
    "Myotis alcathoe",
    "Myotis bechsteinii",
    "Myotis brandtii",
    "Myotis daubentonii",
    "Myotis mystacinus",
    "Myotis nattereri",
    "Nyctalus leisleri",
    "Nyctalus noctula",
    "Pipistrellus nathusii",
    "Pipistrellus pipistrellus",
    "Pipistrellus pygmaeus",
    "Plecotus auritus",
    "Plecotus austriacus",
    "Rhinolophus ferrumequinum",
    "Rhinolophus hipposideros",
)


@dataclass(frozen=True)
class SyntheticTag:
    key: str
    value: str
    confidence: float


@dataclass(frozen=True)
class SyntheticDetection:
    start_time_s: float
    end_time_s: float
    low_freq_hz: float
    high_freq_hz: float
    score: float
    tags: tuple[SyntheticTag, ...]


@dataclass(frozen=True)
class SyntheticRecording:
    index: int
    path: str
    started_at: dt.datetime
    duration_s: float
    samplerate_hz: int

    @property
    def output_created_at(self) -> dt.datetime:
        return self.started_at + dt.timedelta(seconds=self.duration_s) + DETECTOR_LATENCY


def recording(index: int) -> SyntheticRecording:
    started_at = DEPLOYMENT_START + index * RECORDING_INTERVAL
    return SyntheticRecording(
        index=index,
        path=f"/var/lib/acoupi/recordings/{started_at:%Y%m%d_%H%M%S}.wav",
        started_at=started_at,
        duration_s=RECORDING_DURATION_S,
        samplerate_hz=SAMPLERATE_HZ,
    )


def detections(recording_index: int) -> list[SyntheticDetection]:
    """The detections of the one model output of a recording: bat-call-like boxes, ranked species."""
    rng = random.Random(SEED * 1_000_003 + recording_index)
    out = []
    for _ in range(DETECTIONS_PER_OUTPUT):
        start = rng.uniform(0.0, RECORDING_DURATION_S - 0.05)
        low = rng.uniform(15_000.0, 60_000.0)
        confidences = sorted((rng.random() for _ in range(TAGS_PER_DETECTION)), reverse=True)
        species = rng.sample(SPECIES, TAGS_PER_DETECTION)
        out.append(
            SyntheticDetection(
                start_time_s=start,
                end_time_s=start + rng.uniform(0.002, 0.03),
                low_freq_hz=low,
                high_freq_hz=low + rng.uniform(5_000.0, 60_000.0),
                score=rng.uniform(0.1, 1.0),
                tags=tuple(
                    SyntheticTag(key=TAG_KEY, value=name, confidence=confidence)
                    for name, confidence in zip(species, confidences, strict=True)
                ),
            )
        )
    return out


def timed_recording_indexes(stage: str) -> range:
    """The recordings stored (and then given outputs) inside the timed region of a stage."""
    existing = STAGES[stage]
    return range(existing, existing + TIMED_BATCH)


def load_sample_paths() -> list[str]:
    """Paths loaded in the timed lookup: the oldest recordings, as acoupi's script picks them.

    Recordings 0..19 exist at every stage: prefilled in 1d and 30d, stored by the timed calls in empty.
    """
    return [recording(index).path for index in range(LOAD_SAMPLE)]
