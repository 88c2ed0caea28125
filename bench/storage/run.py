"""Storage benchmark: acoustack's storage service against acoupi's SqliteStore: the newest acoupi on
PyPI, 0.8.0 (plain sqlite since 0.8), or BENCH_ACOUPI_VERSION (e.g. 0.6.0, its SQLAlchemy ORM).

`make bench-storage` (or `uv run --frozen python bench/storage/run.py` from the repository root).

Reproduces the method of acoupi's scripts/benchmark_metadata_store.py: stores prefilled to the
deployment stages empty, 1d and 30d (96 recordings a day, each with one model output of 200
detections x 5 tags), then timed one call at a time: storing 20 new recordings, storing their 20
model outputs, and loading 20 recordings with all their outputs by path, 20 times. acoupi's script
reports the sum, mean and standard deviation of those calls; we report the MEDIAN of the 20 calls,
which a stray fsync or garbage collection cannot move, and print mean, min and max on stderr.

Both sides store the same synthetic data (workload.py). The acoupi side runs in its own venv,
bench/storage/.venv-acoupi, created on first run; the acoustack side goes through the gRPC client to a
storage service on a scratch Postgres database (acoustack_side.py).

stdout carries exactly nine lines, for each stage S:
    store_recording_S: X ms (reference Y ms, ratio Z x)
    store_model_output_S: ...
    load_recordings_S: ...
where X is acoustack, Y is acoupi measured in the same run, and Z = Y / X (higher is better for us).
Everything else goes to stderr.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import acoustack_side
import workload

HERE = Path(__file__).resolve().parent
REFERENCE_VERSION = os.environ.get("BENCH_ACOUPI_VERSION", "0.8.0")
# One venv per version (0.6.0's keeps its old name), so switching does not reinstall.
REFERENCE_VENV = HERE / (
    ".venv-acoupi" if REFERENCE_VERSION == "0.6.0" else f".venv-acoupi-{REFERENCE_VERSION}"
)
REFERENCE_PYTHON = REFERENCE_VENV / "bin" / "python"
REFERENCE_PYTHON_VERSION = "3.11"
# Prefilling 30 days through acoupi's API takes one to one and a half minutes here.
REFERENCE_STAGE_TIMEOUT_S = 1800

OPERATIONS = ("store_recording", "store_model_output", "load_recordings")


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def installed_reference_version() -> str | None:
    if not REFERENCE_PYTHON.exists():
        return None
    probe = subprocess.run(
        [
            str(REFERENCE_PYTHON),
            "-c",
            "from importlib.metadata import version; print(version('acoupi'))",
        ],
        capture_output=True,
        text=True,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def ensure_reference_venv() -> None:
    """Create the reference venv with acoupi REFERENCE_VERSION unless it is already there."""
    if installed_reference_version() == REFERENCE_VERSION:
        return
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        raise SystemExit("uv is needed to create the acoupi venv (bench/storage/.venv-acoupi)")
    log(f"creating {REFERENCE_VENV} with acoupi {REFERENCE_VERSION}")
    if not REFERENCE_PYTHON.exists():
        subprocess.run(
            [uv, "venv", "--python", REFERENCE_PYTHON_VERSION, str(REFERENCE_VENV)],
            check=True,
            stdout=sys.stderr,
        )
    subprocess.run(
        [
            uv, "pip", "install",
            "--python", str(REFERENCE_PYTHON),
            "--override", str(HERE / "reference-overrides.txt"),
            f"acoupi=={REFERENCE_VERSION}",
        ],
        check=True,
        stdout=sys.stderr,
    )  # fmt: skip


def run_reference(stage: str) -> dict:
    # The workspace venv's variables must not leak into acoupi's interpreter.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    finished = subprocess.run(
        [str(REFERENCE_PYTHON), str(HERE / "reference_acoupi.py"), stage],
        env=env,
        cwd=HERE,
        stdout=subprocess.PIPE,
        text=True,
        timeout=REFERENCE_STAGE_TIMEOUT_S,
    )
    if finished.returncode != 0:
        raise SystemExit(f"reference_acoupi.py {stage} failed with exit code {finished.returncode}")
    return json.loads(finished.stdout)


def milliseconds(durations_s: list[float]) -> float:
    return statistics.median(durations_s) * 1000


def log_spread(stage: str, side: str, durations: dict[str, list[float]]) -> None:
    for operation, values in durations.items():
        ms = [v * 1000 for v in values]
        log(
            f"  {side:9} {operation}_{stage}: n={len(ms)} median={statistics.median(ms):.2f} "
            f"mean={statistics.mean(ms):.2f} min={min(ms):.2f} max={max(ms):.2f} ms"
        )


def main() -> None:
    ensure_reference_venv()
    for stage in workload.STAGES:
        reference = run_reference(stage)
        ours = acoustack_side.run_stage(stage)
        log(
            f"{stage}: prefill {workload.STAGES[stage]} recordings: acoupi {reference['prefill_s']:.1f} s, "
            f"acoustack {ours['prefill_s']:.1f} s"
        )
        log_spread(stage, "acoupi", reference["durations_s"])
        log_spread(stage, "acoustack", ours["durations_s"])
        for operation in OPERATIONS:
            ours_ms = milliseconds(ours["durations_s"][operation])
            reference_ms = milliseconds(reference["durations_s"][operation])
            print(
                f"{operation}_{stage}: {ours_ms:.2f} ms "
                f"(reference {reference_ms:.2f} ms, ratio {reference_ms / ours_ms:.1f} x)",
                flush=True,
            )


if __name__ == "__main__":
    main()
