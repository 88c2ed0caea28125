"""Smoke test of the container stack: compose/compose.yaml up, then the Store API over gRPC from the host.

It builds the images first (`make images`: cached layers make that quick when nothing changed;
ACOUSTACK_SMOKE_BUILD=0 skips it), starts postgres, rabbitmq and storage under a project name of
its own with storage on a free host port, waits until every service is healthy, then starts a
deployment, stores a recording and reads it back by id and by path. The stack and its volumes are
removed at the end, whatever happened. Without a Docker engine it fails and says how to get one.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from acoustack.v1 import store_pb2, store_pb2_grpc, types_pb2

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "compose" / "compose.yaml"
BUILD_TIMEOUT_S = 1200  # first build: debootstrap + apt in three images; later builds are cached
UP_TIMEOUT_S = 180  # docker compose up --wait: every healthcheck passing
DOWN_TIMEOUT_S = 120
RPC_TIMEOUT_S = 10
HOW_TO_GET_DOCKER = (
    "run `scripts/ensure-docker.sh` as root: it installs Debian's docker.io, debootstrap and the "
    "compose v2 plugin when missing, starts dockerd and waits until `docker info` answers"
)


def docker_client() -> str:
    """The docker client the Makefile uses: $DOCKER, else Debian's /usr/bin/docker, else PATH."""
    for candidate in (os.environ.get("DOCKER"), "/usr/bin/docker", shutil.which("docker")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(f"no docker client found; {HOW_TO_GET_DOCKER}", pytrace=False)


def run(
    args: list[str], timeout_s: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            args,
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or ""
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        pytest.fail(
            f"`{' '.join(args)}` did not finish within {timeout_s:.0f} s\n{out[-3000:]}",
            pytrace=False,
        )


def require_docker(docker: str) -> None:
    info = run([docker, "info", "--format", "{{.ServerVersion}}"], timeout_s=30)
    if info.returncode != 0:
        pytest.fail(
            f"the Docker engine is not available ({docker} info: {info.stderr.strip()[-500:]}); "
            f"{HOW_TO_GET_DOCKER}",
            pytrace=False,
        )
    compose = run([docker, "compose", "version", "--short"], timeout_s=30)
    if compose.returncode != 0:
        pytest.fail(
            f"`{docker} compose` (compose v2) is not available: {compose.stderr.strip()[-500:]}; "
            f"{HOW_TO_GET_DOCKER}",
            pytrace=False,
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def stack() -> Iterator[str]:
    """Start the stack under its own project name; yield the storage address on the host."""
    docker = docker_client()
    require_docker(docker)
    env = dict(os.environ, DOCKER=docker)
    if os.environ.get("ACOUSTACK_SMOKE_BUILD", "1") != "0":
        built = run(["make", "--no-print-directory", "images"], timeout_s=BUILD_TIMEOUT_S, env=env)
        if built.returncode != 0:
            pytest.fail(
                f"`make images` failed ({built.returncode}):\n"
                f"{built.stdout[-4000:]}\n{built.stderr[-4000:]}",
                pytrace=False,
            )

    port = free_port()
    project = f"acoustack-smoke-{uuid.uuid4().hex[:8]}"
    env["STORAGE_HOST_PORT"] = str(port)
    compose = [docker, "compose", "-f", str(COMPOSE_FILE), "-p", project]
    try:
        up = run(
            [
                *compose,
                "up",
                "-d",
                "--wait",
                "--wait-timeout",
                str(UP_TIMEOUT_S),
                "--no-build",
                "--pull",
                "never",
            ],
            timeout_s=UP_TIMEOUT_S + 60,
            env=env,
        )
        if up.returncode != 0:
            ps = run([*compose, "ps", "-a"], timeout_s=30, env=env)
            logs = run([*compose, "logs", "--no-color", "--tail", "60"], timeout_s=60, env=env)
            pytest.fail(
                f"the stack did not become healthy within {UP_TIMEOUT_S} s:\n{up.stderr[-3000:]}\n"
                f"{ps.stdout}\n{logs.stdout[-6000:]}",
                pytrace=False,
            )
        yield f"127.0.0.1:{port}"
    finally:
        down = run(
            [*compose, "down", "--volumes", "--remove-orphans", "--timeout", "20"],
            timeout_s=DOWN_TIMEOUT_S,
            env=env,
        )
        assert down.returncode == 0, f"compose down failed: {down.stderr[-2000:]}"


@pytest.fixture(scope="module")
def store(stack: str) -> Iterator[store_pb2_grpc.StoreStub]:
    with grpc.insecure_channel(stack) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=30)
        except grpc.FutureTimeoutError:
            pytest.fail(f"storage did not accept a gRPC connection on {stack} within 30 s")
        yield store_pb2_grpc.StoreStub(channel)


@pytest.mark.timeout(BUILD_TIMEOUT_S + UP_TIMEOUT_S + DOWN_TIMEOUT_S + 180)
def test_store_and_read_back_a_recording(store: store_pb2_grpc.StoreStub) -> None:
    started = store.StartDeployment(
        store_pb2.StartDeploymentRequest(name="smoke", latitude=51.5, longitude=-0.12),
        timeout=RPC_TIMEOUT_S,
    ).deployment
    assert started.id and started.name == "smoke"
    assert (started.latitude, started.longitude) == (51.5, -0.12)
    assert not started.HasField("ended_at")

    rid = str(uuid.uuid4())
    sent = types_pb2.Recording(
        id=rid,
        deployment_id=started.id,
        device_id="smoke-device",
        source_id="mic-0",
        path=f"/recordings/tmp/{rid}.wav",
        duration_s=3.0,
        capture_samplerate_hz=384_000,
        channels=1,
        time_expansion=1.0,
        status=types_pb2.RECORDING_STATUS_TEMPORARY,
    )
    sent.started_at.FromDatetime(dt.datetime(2026, 6, 1, 21, 30, 0, 123456, tzinfo=dt.UTC))

    stored = store.StoreRecording(
        store_pb2.StoreRecordingRequest(recording=sent), timeout=RPC_TIMEOUT_S
    )
    assert stored.created
    again = store.StoreRecording(
        store_pb2.StoreRecordingRequest(recording=sent), timeout=RPC_TIMEOUT_S
    )
    assert not again.created, "StoreRecording is idempotent on the recording id"

    by_id = store.GetRecording(
        store_pb2.GetRecordingRequest(recording_id=rid), timeout=RPC_TIMEOUT_S
    ).entry.recording
    assert by_id.HasField("created_at"), "the store fills created_at"
    assert without_created_at(by_id) == sent

    missing = f"/recordings/tmp/{uuid.uuid4()}.wav"
    by_path = store.GetRecordingsByPath(
        store_pb2.GetRecordingsByPathRequest(paths=[sent.path, missing]), timeout=RPC_TIMEOUT_S
    )
    assert [without_created_at(e.recording) for e in by_path.entries] == [sent]
    assert by_path.entries[0].recording.created_at == by_id.created_at
    assert list(by_path.missing_paths) == [missing]


def without_created_at(recording: types_pb2.Recording) -> types_pb2.Recording:
    copy = types_pb2.Recording()
    copy.CopyFrom(recording)
    copy.ClearField("created_at")
    return copy
