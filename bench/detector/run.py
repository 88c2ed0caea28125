"""Detector benchmark: acoustack's BatDetect2 (ONNX + numpy) against batdetect2 1.3.1 (torch).

`make bench-detector` (needs `make model`: the reference runs in its build environment). Same
machine, same run, same audio: ten 3 s recordings and one 30 s recording at 384 kHz, made from the
bundled recordings (acoustack_detector.testing.make_long_recording, at different offsets). Each
side runs in a process of its own with its default settings (side.py) and reports CPU time and
peak resident memory. stdout:

    detector_ms_per_audio_s: X ms (reference Y ms, ratio Z x)      CPU per audio second, 3 s files
    detector_30s_ms_per_audio_s: X ms (reference Y ms, ratio Z x)  CPU per audio second, 30 s file
    detector_peak_rss: X MB (reference Y MB, ratio Z x)            peak resident memory
    detector_parity: N/N detections identical                      within the parity tolerances
    detector_two_models_ms_per_audio_s: X ms (reference Y ms, ratio Z x)
        wall time per audio second of BatDetect2 and the example model server at once, as
        detection.extra_models runs them, against the two one after the other (two_models.py)

The ratio is reference / acoustack (higher is better for acoustack). stderr has the details.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from acoustack_detector import testing

REPO = Path(__file__).resolve().parents[2]
AUDIO = REPO / "services" / "detector" / "tests" / "data" / "audio"
REFERENCE_PYTHON = REPO / "build" / "model-env" / "bin" / "python"
SIDE = Path(__file__).resolve().parent / "side.py"
TWO_MODELS = Path(__file__).resolve().parent / "two_models.py"
SHORT_FILES, SHORT_S, LONG_S = 10, 3.0, 30.0


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def make_audio(directory: Path) -> tuple[list[Path], Path]:
    # Different offsets into the joined recordings: no two files start at the same place.
    short = [
        testing.make_long_recording(
            AUDIO, directory / f"short-{i}.wav", duration_s=SHORT_S, offset_s=0.13 * i
        )
        for i in range(SHORT_FILES)
    ]
    long = testing.make_long_recording(AUDIO, directory / "long.wav", duration_s=LONG_S)
    return short, long


def run_side(python: Path | str, side: str, files: list[Path]) -> dict:
    log(f"running {side} ...")
    done = subprocess.run(
        [str(python), str(SIDE), side, *map(str, files)],
        check=True,
        stdout=subprocess.PIPE,
        cwd=REPO,
    )
    return json.loads(done.stdout)


def ratio_line(name: str, ours: float, reference: float, unit: str, digits: int = 0) -> str:
    return (
        f"{name}: {ours:.{digits}f} {unit} (reference {reference:.{digits}f} {unit}, "
        f"ratio {reference / ours:.1f} x)"
    )


def main() -> int:
    if not REFERENCE_PYTHON.is_file():
        log("the reference needs the model build environment: run `make model` first")
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-detector-") as scratch:
        short, long = make_audio(Path(scratch))
        files = [*short, long]
        ours = run_side(sys.executable, "acoustack", files)
        reference = run_side(REFERENCE_PYTHON, "reference", files)
        log("running two models ...")
        two_models = subprocess.run(
            [sys.executable, str(TWO_MODELS), *map(str, short)],
            check=True, stdout=subprocess.PIPE, cwd=REPO, text=True,
        ).stdout.strip()  # fmt: skip

    def ms_per_audio_s(side: dict, paths: list[Path], seconds: float) -> float:
        return 1000 * sum(side["cpu_s"][str(p)] for p in paths) / seconds

    identical = total = 0
    for path in map(str, files):
        found, expected = ours["detections"][path], reference["detections"][path]
        only_ours, only_theirs = testing.unmatched(found, expected)
        total += len(expected)
        identical += len(expected) - len(only_theirs) if len(found) == len(expected) else 0
        exact = len(expected) - len(testing.unmatched_exactly(found, expected))
        log(
            f"{Path(path).name}: {len(found)} detections, batdetect2 {len(expected)}; "
            f"{exact} equal to the last digit; only acoustack {only_ours[:2]}, "
            f"only batdetect2 {only_theirs[:2]}"
        )

    short_s = SHORT_FILES * SHORT_S
    for name, paths, seconds in (
        ("detector_ms_per_audio_s", short, short_s),
        ("detector_30s_ms_per_audio_s", [long], LONG_S),
    ):
        ours_ms, reference_ms = (ms_per_audio_s(side, paths, seconds) for side in (ours, reference))
        print(ratio_line(name, ours_ms, reference_ms, "ms"))
    print(ratio_line("detector_peak_rss", ours["peak_rss_mb"], reference["peak_rss_mb"], "MB"))
    print(f"detector_parity: {identical}/{total} detections identical")
    print(two_models)
    return 0


if __name__ == "__main__":
    sys.exit(main())
