"""The reference side of the storage benchmark: acoupi's SqliteStore (0.8.0 by default, 0.6.0 with
BENCH_ACOUPI_VERSION; the same API in both, over plain sqlite in 0.8 and SQLAlchemy in 0.6).

Runs inside run.py's acoupi venv (.venv-acoupi-0.8.0, .venv-acoupi for 0.6.0), never in the
workspace venv:
    .venv-acoupi/bin/python reference_acoupi.py STAGE
prints one JSON object on stdout: the stage, the prefill time and every timed call's duration in
seconds. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterable
from importlib.metadata import version
from pathlib import Path

import workload


def _install_pyaudio_stub() -> None:
    """Let `acoupi.components` import without PyAudio.

    acoupi.components/__init__.py imports its audio recorders, which import PyAudio, and PyAudio has no
    Linux wheel (building it needs the portaudio headers). run.py installs acoupi without it; the
    store never touches audio, so a stub that refuses to record is enough.
    """
    try:
        import pyaudio  # noqa: F401
    except ModuleNotFoundError:
        stub = types.ModuleType("pyaudio")

        class PyAudio:
            def __init__(self, *args: object, **kwargs: object) -> None:
                raise RuntimeError("PyAudio is not installed in the benchmark's acoupi venv")

        stub.PyAudio = PyAudio
        stub.paInt16 = 8
        sys.modules["pyaudio"] = stub


_install_pyaudio_stub()

from acoupi import data  # noqa: E402
from acoupi.components.stores.sqlite import SqliteStore  # noqa: E402


def log(text: str) -> None:
    print(f"[acoupi {version('acoupi')}] {text}", file=sys.stderr, flush=True)


def acoupi_recording(index: int, deployment: data.Deployment) -> data.Recording:
    synthetic = workload.recording(index)
    return data.Recording(
        created_on=synthetic.started_at,
        duration=synthetic.duration_s,
        samplerate=synthetic.samplerate_hz,
        deployment=deployment,
        path=Path(synthetic.path),
        audio_channels=1,
    )


def acoupi_model_output(index: int, recording: data.Recording) -> data.ModelOutput:
    """The output a detector would hand to the store: built before, and outside, any timing."""
    return data.ModelOutput(
        name_model=workload.MODEL_NAME,
        recording=recording,
        created_on=workload.recording(index).output_created_at,
        detections=[
            data.EventDetection(
                location=data.BoundingBox.from_coordinates(
                    start_time=d.start_time_s,
                    low_freq=d.low_freq_hz,
                    end_time=d.end_time_s,
                    high_freq=d.high_freq_hz,
                ),
                detection_score=d.score,
                tags=[
                    data.PredictedTag(
                        tag=data.Tag(key=t.key, value=t.value), confidence_score=t.confidence
                    )
                    for t in d.tags
                ],
            )
            for d in workload.detections(index)
        ],
    )


def prefill(store: SqliteStore, deployment: data.Deployment, count: int) -> None:
    """Store `count` recordings with their outputs through acoupi's own API, a day at a time.

    store_recording is acoupi's only way in for a recording (one transaction each); outputs go through
    store_model_outputs, acoupi 0.6's bulk path (one executemany transaction per call). acoupi's script
    instead writes rows with raw SQL for a schema older than 0.6.0's, which cannot be reused here.
    """
    for day_start in range(0, count, workload.RECORDINGS_PER_DAY):
        day = range(day_start, min(day_start + workload.RECORDINGS_PER_DAY, count))
        recordings = [acoupi_recording(index, deployment) for index in day]
        for recording in recordings:
            store.store_recording(recording)
        store.store_model_outputs(
            [
                acoupi_model_output(index, recording)
                for index, recording in zip(day, recordings, strict=True)
            ]
        )


def time_each(calls: Iterable[Callable[[], object]]) -> list[float]:
    durations = []
    for call in calls:
        start = time.perf_counter()
        call()
        durations.append(time.perf_counter() - start)
    return durations


def check_loaded(loaded: list[tuple[data.Recording, list[data.ModelOutput]]]) -> None:
    """The timed lookup must have returned every recording with its full output."""
    expected = workload.LOAD_SAMPLE
    full = [
        outputs
        for _, outputs in loaded
        if len(outputs) == 1
        and len(outputs[0].detections) == workload.DETECTIONS_PER_OUTPUT
        and all(len(d.tags) == workload.TAGS_PER_DETECTION for d in outputs[0].detections)
    ]
    if len(loaded) != expected or len(full) != expected:
        raise SystemExit(
            f"acoupi returned {len(loaded)} recordings, {len(full)} with a full model output; "
            f"expected {expected}"
        )


def run_stage(stage: str, db_path: Path) -> dict[str, object]:
    store = SqliteStore(db_path)
    deployment = data.Deployment(
        name=workload.DEPLOYMENT_NAME,
        latitude=workload.DEPLOYMENT_LATITUDE,
        longitude=workload.DEPLOYMENT_LONGITUDE,
        started_on=workload.DEPLOYMENT_START,
    )
    store.store_deployment(deployment)

    existing = workload.STAGES[stage]
    log(f"{stage}: prefilling {existing} recordings with outputs")
    start = time.perf_counter()
    prefill(store, deployment, existing)
    prefill_s = time.perf_counter() - start
    log(f"{stage}: prefill took {prefill_s:.1f} s ({db_path.stat().st_size / 1e6:.0f} MB)")

    indexes = workload.timed_recording_indexes(stage)
    recordings = [acoupi_recording(index, deployment) for index in indexes]
    store_recording = time_each(lambda r=r: store.store_recording(r) for r in recordings)

    outputs = [acoupi_model_output(i, r) for i, r in zip(indexes, recordings, strict=True)]
    store_model_output = time_each(lambda o=o: store.store_model_output(o) for o in outputs)

    paths = [Path(p) for p in workload.load_sample_paths()]
    loaded: list = []
    load_recordings = time_each(
        lambda: loaded.append(store.get_recordings_by_path(paths))
        for _ in range(workload.LOAD_REPETITIONS)
    )
    check_loaded(loaded[-1])

    return {
        "stage": stage,
        "acoupi_version": version("acoupi"),
        "pydantic_version": version("pydantic"),
        "prefill_s": prefill_s,
        "durations_s": {
            "store_recording": store_recording,
            "store_model_output": store_model_output,
            "load_recordings": load_recordings,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=list(workload.STAGES))
    args = parser.parse_args()
    # A fresh sqlite file per stage, on the same disk as everything else in /tmp.
    with tempfile.TemporaryDirectory(prefix="bench-storage-acoupi-") as tmp:
        result = run_stage(args.stage, Path(tmp) / "metadata.db")
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
