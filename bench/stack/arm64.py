"""Image sizes on both architectures, and the arm64 detector under emulation.

`make bench-arm64` (after `make images` and `make images-arm64`); `make bench-stack` may run it
for these lines. stdout, one line per figure:

    image_size_<image>_amd64: X MB         docker's size of acoustack/<image>:TAG (the six services,
                                           postgres, rabbitmq, mosquitto)
    image_size_<image>_arm64: X MB         the same of acoustack/<image>:TAG-arm64
    detector_arm64_emulated_ms_per_audio_s: X ms (informational: emulation, not a Pi)

X MB is 10^6 bytes, as `docker images` counts. The detector figure: the arm64 image's own Python
runs the bundled BatDetect2 (ONNX Runtime, its default settings) under qemu-user, as a Pi 4's CPU
(QEMU_CPU, cortex-a72): after the model's load (its warm-up is one inference on a 3 s chunk), one
pass over the three bundled recordings, its CPU time over their audio duration. Emulated, a
second of audio takes about three minutes of CPU, so there is one pass and no warm-up per file.
A Pi's cores run natively, so this says only that the arm64 image works and how heavy the
emulation is: `bench-detector` measures the detector itself. A missing image of either architecture is
reported and the detector measured all the same when its arm64 image is there (exit 1 at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The six services, then the infrastructure images the project builds (Mosquitto: --profile mqtt).
SERVICES = ("storage", "detector", "recorder", "messenger", "scheduler", "dashboard", "postgres",
            "rabbitmq", "mosquitto")  # fmt: skip
ARCHITECTURES = {"amd64": "", "arm64": "-arm64"}  # tag suffix of each architecture's images
# Bounded: emulated, the load's warm-up alone (3 s of audio) took 547 s of CPU, 854 s on the 2
# shared cores (bench/README.md); the pass adds 1.5 s of audio.
RUN_TIMEOUT_S = 3600
# A Pi 4's cores (no SVE or SME): what the image runs on, not qemu's default `max`.
QEMU_CPU = "cortex-a72"

# Runs inside the arm64 detector image: its venv, its model ($ACOUSTACK_MODEL_DIR), its audio.
MEASURE = """
import json, os, platform, sys, time, wave
from pathlib import Path
from acoustack_detector.batdetect2 import BatDetect2Onnx
files = sorted(Path("/opt/acoustack/audio").glob("*.wav"))
started = time.monotonic()
model = BatDetect2Onnx.load()
load_s = time.monotonic() - started
audio_s = cpu_s = 0.0
for path in files:
    with wave.open(str(path)) as w:
        audio_s += w.getnframes() / w.getframerate()
    started = time.process_time()
    model.predict_file(path)
    cpu_s += time.process_time() - started
json.dump({"machine": platform.machine(), "files": len(files), "audio_s": audio_s,
           "cpu_s": cpu_s, "load_wall_s": load_s}, sys.stdout)
"""


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def docker() -> str:
    return os.environ.get("DOCKER", "/usr/bin/docker")


def image_facts(image: str) -> tuple[int, str] | None:
    """(size in bytes, architecture) of a local image, None when it is not there."""
    done = subprocess.run(
        [docker(), "image", "inspect", "-f", "{{.Size}} {{.Architecture}}", image],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return None
    size, architecture = done.stdout.split()
    return int(size), architecture


def emulated_detector(image: str) -> dict:
    # A process that crashes under qemu-user can hang instead of exiting: a name to remove it by.
    name = f"acoustack-bench-arm64-{os.getpid()}"
    try:
        done = subprocess.run(
            [docker(), "run", "--rm", "--name", name, "--platform", "linux/arm64",
             "--network", "none", "--env", f"QEMU_CPU={QEMU_CPU}", "--entrypoint", "python",
             image, "-c", MEASURE],
            capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(
            f"the arm64 detector gave no result within {RUN_TIMEOUT_S} s (hung under emulation?)"
        ) from exc
    finally:
        subprocess.run([docker(), "rm", "-f", name], capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the arm64 detector failed ({done.returncode}): {done.stderr[-3000:]}")
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", default=os.environ.get("ACOUSTACK_VERSION", "dev"))
    args = parser.parse_args()
    missing = []
    for service in SERVICES:
        for architecture, suffix in ARCHITECTURES.items():
            image = f"acoustack/{service}:{args.tag}{suffix}"
            facts = image_facts(image)
            if facts is None:
                missing.append(image)
                continue
            size, built_for = facts
            if built_for != architecture:
                log(f"{image} is built for {built_for}, not {architecture}: rebuild it")
                return 1
            print(f"image_size_{service}_{architecture}: {size / 1e6:.0f} MB", flush=True)
    if missing:
        log(f"missing images: {', '.join(missing)}; run `make images` and `make images-arm64`")
    detector = f"acoustack/detector:{args.tag}-arm64"
    if detector in missing:
        return 1
    log(f"the arm64 detector under emulation (QEMU_CPU={QEMU_CPU}), one pass ...")
    try:
        measured = emulated_detector(detector)
    except RuntimeError as exc:
        log(f"{exc}\n(qemu 7.2, Debian bookworm's own, crashes in onnxruntime's import: `make")
        log(" arm64-emulation` installs qemu 10 from bookworm-backports; compose/README.md, arm64)")
        return 1
    if measured["machine"] != "aarch64":
        log(f"the detector image ran as {measured['machine']}, not aarch64")
        return 1
    log(json.dumps(measured))
    ms = measured["cpu_s"] * 1000 / measured["audio_s"]
    print(
        f"detector_arm64_emulated_ms_per_audio_s: {ms:.0f} ms (informational: emulation, not a Pi)"
    )
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
