"""The linux/arm64 stack under emulation: the images `make images-arm64` built, started with the
same compose file, record (replay), detect with the bundled model and store a detection.

`make test-arm64` (slow, not part of `make test`: marker `arm64`, deselected by default). Every
container's binaries run under qemu-user here, tens of times slower than natively, so the health
checks get longer timeouts (a compose file of the test's own) and the detection a long deadline;
nothing else differs from what a Pi runs. It needs qemu 10 (`make arm64-emulation`): under Debian
bookworm's qemu 7.2 the Erlang VM and onnxruntime crash (compose/README.md, arm64).
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import grpc
import pytest
import yaml

from acoustack.testing.servers import free_port
from acoustack.v1 import store_pb2, store_pb2_grpc

pytestmark = pytest.mark.arm64

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "compose" / "compose.yaml"
DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")
TAG = os.environ.get("ACOUSTACK_ARM64_TAG", "dev-arm64")
IMAGES = ("postgres", "rabbitmq", "storage", "detector", "recorder", "messenger", "scheduler",
          "dashboard")  # fmt: skip
UP_TIMEOUT_S = 1200
# Emulated, the bundled model's load (its warm-up is one inference on a 3 s chunk) took 547 s of
# CPU alone (bench/README.md, arm64): the test loads it before the first recording, through the
# detector's own Model service, so the detect task (its time limit made for a Pi) only detects.
MODEL_LOAD_TIMEOUT_S = 2400
DETECTION_TIMEOUT_S = 1800
# Short recordings, seldom: a second of audio costs minutes of emulated CPU.
RECORDING = {"recording.duration_s": "0.5", "recording.interval_s": "60"}
# Emulated, a health check's answer can take seconds (acoustack-grpc-health reads it for READ_S).
SLOW_HEALTH = {"timeout": "60s", "interval": "20s", "start_period": "600s", "retries": 10}
# qemu's translated code counts in a container's memory: the messenger's 256 MB was OOM-killed.
EMULATED_MEM_LIMIT = "1g"
# The CPU qemu emulates: a Pi 4's cores (no SVE or SME), not qemu's default `max`, whose wider
# vector units the libraries pick and the emulation runs slower (as bench/stack/arm64.py).
QEMU_CPU = "cortex-a72"
# Run in the detector container: the Model service's Info loads the bundled model in the pool
# child that serves it, the one that runs the detect tasks (one worker).
LOAD_MODEL = f"""
import grpc
from acoustack.v1 import model_pb2, model_pb2_grpc
with grpc.insecure_channel("127.0.0.1:50052") as channel:
    info = model_pb2_grpc.ModelStub(channel).Info(model_pb2.InfoRequest(),
                                                  timeout={MODEL_LOAD_TIMEOUT_S})
print(info.name, info.version)
"""


def run(args: list[str], timeout_s: float, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )


def image_architecture(image: str) -> str | None:
    done = run([DOCKER, "image", "inspect", "-f", "{{.Architecture}}", image], 30, dict(os.environ))
    return done.stdout.strip() if done.returncode == 0 else None


@pytest.mark.timeout(UP_TIMEOUT_S + MODEL_LOAD_TIMEOUT_S + DETECTION_TIMEOUT_S + 900)
def test_the_arm64_stack_stores_a_detection_from_the_bundled_model(tmp_path: Path) -> None:
    for name in IMAGES:
        image = f"acoustack/{name}:{TAG}"
        architecture = image_architecture(image)
        assert architecture == "arm64", (
            f"{image}: {'missing' if architecture is None else f'built for {architecture}'}; "
            "run `make images-arm64` (its emulation: `make arm64-emulation`)"
        )
    env = dict(os.environ, DOCKER=DOCKER, ACOUSTACK_VERSION=TAG)
    secrets_file = tmp_path / "secrets.env"
    made = run(["make", "--no-print-directory", "secrets", f"SECRETS_FILE={secrets_file}"], 60, env)
    assert made.returncode == 0, made.stdout + made.stderr
    slow = tmp_path / "compose.emulated.yaml"
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    running = [n for n, s in services.items() if "profiles" not in s]
    slow.write_text(
        yaml.safe_dump(
            {
                "services": {
                    n: {
                        "mem_limit": EMULATED_MEM_LIMIT,
                        "environment": {"QEMU_CPU": QEMU_CPU, "ACOUSTACK_HEALTH_READ_S": "10"},
                    }
                    | ({"healthcheck": SLOW_HEALTH} if "healthcheck" in services[n] else {})
                    for n in running
                }
            }
        )
    )
    storage_port = free_port()
    env.update(
        STORAGE_HOST_PORT=str(storage_port),
        SCHEDULER_HOST_PORT=str(free_port()),
        DASHBOARD_HOST_PORT=str(free_port()),
        DETECTOR_CONCURRENCY="1",
    )
    compose = [DOCKER, "compose", "--env-file", str(COMPOSE_FILE.parent / ".env"),
               "--env-file", str(secrets_file), "-f", str(COMPOSE_FILE), "-f", str(slow),
               "-p", f"acoustack-arm64-{uuid.uuid4().hex[:8]}"]  # fmt: skip
    try:
        up = run(
            [*compose, "up", "-d", "--wait", "--wait-timeout", str(UP_TIMEOUT_S), "--no-build",
             "--pull", "never"],
            UP_TIMEOUT_S + 120, env,
        )  # fmt: skip
        logs = run([*compose, "logs", "--no-color", "--tail", "40"], 120, env).stdout[-6000:]
        assert up.returncode == 0, f"the arm64 stack did not come up:\n{up.stderr[-3000:]}\n{logs}"
        machine = run([*compose, "exec", "-T", "detector", "uname", "-m"], 120, env)
        assert machine.stdout.strip() == "aarch64", machine.stdout + machine.stderr
        loaded = run([*compose, "exec", "-T", "detector", "python", "-c", LOAD_MODEL],
                     MODEL_LOAD_TIMEOUT_S + 300, env)  # fmt: skip
        assert loaded.returncode == 0, f"the bundled model did not load: {loaded.stderr[-3000:]}"
        for dotted, value in RECORDING.items():
            changed = run([*compose, "exec", "-T", "scheduler", "acoustack", "config", "set",
                           "--field", dotted, value], 300, env)  # fmt: skip
            assert changed.returncode == 0, changed.stdout + changed.stderr
        # The start's checks (the model on a bundled recording among them) have deadlines made for
        # native speed; the detection below is the check here.
        started = run(
            [*compose, "exec", "-T", "scheduler", "acoustack", "deployment", "start", "--name",
             "arm64", "--latitude", "51.5", "--longitude", "-0.12", "--skip-checks"],
            300, env,
        )  # fmt: skip
        assert started.returncode == 0, started.stdout + started.stderr
        with grpc.insecure_channel(f"127.0.0.1:{storage_port}") as channel:
            store = store_pb2_grpc.StoreStub(channel)
            deadline = time.monotonic() + DETECTION_TIMEOUT_S
            while True:
                entries = store.ListRecordings(
                    store_pb2.ListRecordingsRequest(include_model_outputs=True, limit=1000),
                    timeout=60,
                ).entries
                found = [d for e in entries for o in e.model_outputs for d in o.detections]
                if found:
                    break
                assert time.monotonic() < deadline, (
                    f"no detection stored within {DETECTION_TIMEOUT_S} s "
                    f"({len(entries)} recordings):\n"
                    + run([*compose, "logs", "--no-color", "--tail", "40"], 120, env).stdout[-6000:]
                )
                time.sleep(10)
        # The bundled recordings hold bat calls: BatDetect2 on arm64 names a species.
        assert any(d.tags and d.detection_score > 0 for d in found), found
    finally:
        down = run([*compose, "down", "--volumes", "--remove-orphans", "--timeout", "60"], 600, env)
        assert down.returncode == 0, f"compose down failed: {down.stderr[-2000:]}"
