"""Write the detector's parity fixtures: what batdetect2 1.3.1's own API finds in each test input.

Run by `make reference` in the build environment (build.sh): batdetect2's `api.process_file` with
its default configuration (`api.get_config()`: detection threshold 0.01, 3 s chunks, the bundled
checkpoint), on
  - the three recordings in services/detector/tests/data/audio;
  - inputs made from them by acoustack_detector.testing (a long multi-chunk file, the other
    capture rates, a very short file, digital silence), written to build/reference-inputs/.
One JSON file per input goes to services/detector/tests/data/reference/, recording the command,
the package versions, the input's sha256 and the detections (batdetect2's fields and rounding).
resample.json holds samples of librosa.resample(res_type="polyphase") (what batdetect2 calls) for
the numpy resampler's unit test.
"""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVICE = HERE.parent
REPO = SERVICE.parents[1]
AUDIO_DIR = SERVICE / "tests" / "data" / "audio"
FIXTURE_DIR = SERVICE / "tests" / "data" / "reference"
GENERATED_DIR = REPO / "build" / "reference-inputs"
COMMAND = "make reference"
SCRIPT = "services/detector/model_build/reference.py, run by build.sh in build/model-env"
FIELDS = ("start_time", "end_time", "low_freq", "high_freq", "class", "class_prob", "det_prob")

# The generators are this project's own code; they need only numpy, which the build env has.
sys.path.insert(0, str(SERVICE / "src"))
from acoustack_detector import testing  # noqa: E402

NOTES = {
    "silent": (
        "Digital silence. batdetect2 reports detections here (the network's response to an "
        "all-zero input); acoustack reports none on purpose: see services/detector/README.md."
    ),
}


def describe(name: str) -> str:
    if name == "long":
        return (
            f"the three recordings at {testing.LONG_RATE_HZ} Hz (float64 polyphase resampling, "
            f"16-bit), joined in turn and repeated, from {testing.LONG_OFFSET_S} s for "
            f"{testing.LONG_DURATION_S} s: acoustack_detector.testing.make_long_recording"
        )
    if name.startswith("rate_"):
        return f"{testing.VARIANT_SOURCE} resampled to {name[5:]}Hz: testing.make_rate_variant"
    if name == "short":
        return f"the first {testing.SHORT_DURATION_S} s of {testing.VARIANT_SOURCE}"
    if name == "silent":
        return f"{testing.SILENT_DURATION_S} s of zeros at {testing.SILENT_RATE_HZ} Hz"
    return "bundled recording (see tests/data/audio/README.md)"


def versions() -> dict[str, str]:
    names = ("batdetect2", "torch", "librosa", "scipy", "numpy", "soundfile")
    return {name: metadata.version(name) for name in names} | {"python": platform.python_version()}


def run_batdetect2(api, path: Path) -> dict:
    import soundfile

    result = api.process_file(str(path), config=api.get_config())
    info = soundfile.info(str(path))
    return {
        "samplerate_hz": info.samplerate,
        "frames": info.frames,
        "channels": info.channels,
        "detections": [
            {field: call[field] for field in FIELDS} for call in result["pred_dict"]["annotation"]
        ],
    }


def write_fixture(name: str, path: Path, outcome: dict) -> Path:
    detections = outcome.pop("detections")
    relative = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    head = {
        "command": COMMAND,
        "script": SCRIPT,
        "producer": "batdetect2.api.process_file(path, config=batdetect2.api.get_config())",
        "versions": versions(),
        "input": {
            "file": str(relative),
            "sha256": testing.sha256_of(path),
            "made_by": describe(name),
            **outcome,
        },
        "count": len(detections),
    }
    if name in NOTES:
        head["note"] = NOTES[name]
    out = FIXTURE_DIR / f"{name}.json"
    out.write_text(fixture_json(head, detections))
    return out


def fixture_json(head: dict, detections: list[dict]) -> str:
    """Indented JSON with one detection per line: small, readable, and diff-friendly."""
    text = json.dumps(head, indent=2)[:-1].rstrip()  # without the closing brace
    rows = ",\n".join(f"    {json.dumps(d)}" for d in detections)
    body = f"[\n{rows}\n  ]" if rows else "[]"
    return f'{text},\n  "detections": {body}\n}}\n'


def write_resample_fixture() -> Path:
    import librosa
    import numpy as np

    signal = (np.random.default_rng(7).standard_normal(997) * 0.25).astype(np.float32)
    cases = []
    for from_hz in (192_000, 250_000, 384_000, 500_000, 441_000):
        out = librosa.resample(signal, orig_sr=from_hz, target_sr=256_000, res_type="polyphase")
        n = out.size
        # Both edges (zero padding) and a stride through the middle.
        indices = sorted(set(range(24)) | set(range(0, n, 7)) | set(range(n - 24, n)))
        cases.append(
            {
                "from_hz": from_hz,
                "to_hz": 256_000,
                "length": n,
                "indices": indices,
                "values": [float(out[i]) for i in indices],
            }
        )
    fixture = {
        "command": COMMAND,
        "script": SCRIPT,
        "producer": 'librosa.resample(x, orig_sr, target_sr, res_type="polyphase")',
        "versions": versions(),
        "signal": "(numpy.random.default_rng(7).standard_normal(997) * 0.25).astype(float32)",
        "cases": cases,
    }
    out_path = FIXTURE_DIR / "resample.json"
    out_path.write_text(json.dumps(fixture) + "\n")
    return out_path


def main() -> int:
    import batdetect2.api as api  # loads the bundled checkpoint

    FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
    inputs = {name: AUDIO_DIR / file for name, file in testing.RECORDING_FIXTURES.items()}
    inputs |= testing.generated_inputs(AUDIO_DIR, GENERATED_DIR)
    for name, path in inputs.items():
        out = write_fixture(name, path, run_batdetect2(api, path))
        print(f"{out.relative_to(REPO)}: {json.loads(out.read_text())['count']} detections")
    print(f"{write_resample_fixture().relative_to(REPO)}: resampling samples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
