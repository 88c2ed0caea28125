"""acoustack/rabbitmq on its own: one Erlang VM, and epmd still brought back when it dies.

RabbitMQ's epmd monitor ran a second Erlang VM every 60 s (`erl -sname epmd-starter-N`, about
32 MB and a second of CPU) only to start epmd if it was gone; the image answers that command with
`epmd -daemon` (compose/images/rabbitmq/erl-epmd-starter). Here the image is built (cached layers
make that quick), started with compose's Erlang flags, epmd is killed, and for one monitor period
and a bit the container's processes are listed twice a second: no second beam.smp may appear,
and epmd must be running again with the broker registered, so `rabbitmqctl` still reaches it.
The health checks compose, k3s and the image itself run on it (an AMQP protocol header, no
second VM either) are run in the same container and must pass.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 900
BOOT_TIMEOUT_S = 120
MONITOR_PERIOD_S = 60  # rabbit_epmd_monitor's check interval (fixed in RabbitMQ 3.10)


def docker_client() -> str:
    """The client the Makefile uses: $DOCKER, else Debian's /usr/bin/docker (with BuildKit)."""
    for candidate in (os.environ.get("DOCKER"), "/usr/bin/docker", shutil.which("docker")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("no docker client found: run scripts/ensure-docker.sh as root", pytrace=False)


def run(
    args: list[str], timeout_s: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )


def env_value(name: str) -> str:
    for line in (REPO / "compose" / ".env").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1]
    raise AssertionError(f"compose/.env has no {name}")


def processes(docker: str, container: str) -> list[str]:
    top = run([docker, "top", container, "-eo", "pid,args"], timeout_s=30)
    assert top.returncode == 0, top.stderr
    return top.stdout.splitlines()[1:]


def amqp_answers(docker: str, container: str) -> bool:
    probe = (
        "exec 3<>/dev/tcp/127.0.0.1/5672 && printf 'AMQP\\0\\0\\11\\1' >&3 && "
        '[ "$(timeout 5 head -c 3 <&3 | od -An -tx1)" = " 01 00 00" ]'
    )
    return run([docker, "exec", container, "bash", "-c", probe], timeout_s=30).returncode == 0


@pytest.fixture(scope="module")
def broker() -> tuple[str, str]:
    docker = docker_client()
    if run([docker, "info"], timeout_s=30).returncode != 0:
        pytest.fail("no Docker engine answers: run scripts/ensure-docker.sh as root", pytrace=False)
    tag = f"acoustack/rabbitmq:test-{uuid.uuid4().hex[:8]}"
    name = f"acoustack-test-rabbitmq-{uuid.uuid4().hex[:8]}"
    built = run(
        [
            docker,
            "build",
            "-q",
            "--build-arg",
            f"BASE_IMAGE={env_value('DEBIAN_IMAGE')}",
            "-t",
            tag,
            str(REPO / "compose" / "images" / "rabbitmq"),
        ],
        timeout_s=BUILD_TIMEOUT_S,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
    )
    assert built.returncode == 0, built.stderr[-3000:]
    try:
        started = run(
            [
                docker,
                "run",
                "-d",
                "--name",
                name,
                "--network",
                "none",
                "--no-healthcheck",
                "-e",
                f"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS={env_value('RABBITMQ_ERL_ARGS')}",
                tag,
            ],
            timeout_s=60,
        )
        assert started.returncode == 0, started.stderr
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while not amqp_answers(docker, name):
            if time.monotonic() > deadline:
                logs = run([docker, "logs", name], timeout_s=30)
                pytest.fail(
                    f"the broker did not answer AMQP within {BOOT_TIMEOUT_S} s\n"
                    f"{logs.stdout[-3000:]}{logs.stderr[-3000:]}"
                )
            time.sleep(1)
        yield docker, name
    finally:
        subprocess.run([docker, "rm", "-f", name], capture_output=True, timeout=60, check=False)
        subprocess.run([docker, "rmi", tag], capture_output=True, timeout=60, check=False)


def test_epmd_comes_back_without_a_second_erlang_vm(broker: tuple[str, str]) -> None:
    docker, name = broker
    killed = run([docker, "exec", name, "pkill", "-x", "epmd"], timeout_s=30)
    assert killed.returncode == 0, "epmd was not running in the broker's container"

    seen_vms: set[str] = set()
    epmd_back = False
    deadline = time.monotonic() + MONITOR_PERIOD_S + 15
    while time.monotonic() < deadline:
        listed = processes(docker, name)
        seen_vms.update(line for line in listed if "beam.smp" in line)
        epmd_back = epmd_back or any(line.rstrip().endswith("epmd -daemon") for line in listed)
        time.sleep(0.5)

    assert len(seen_vms) == 1, f"more than the broker's Erlang VM ran: {sorted(seen_vms)}"
    assert epmd_back, "epmd was not started again within one epmd-monitor period"
    names = run([docker, "exec", name, "epmd", "-names"], timeout_s=30)
    assert "name rabbit at port" in names.stdout, names.stdout
    status = run([docker, "exec", name, "rabbitmqctl", "-q", "status"], timeout_s=90)
    assert status.returncode == 0, status.stderr[-2000:]
    assert amqp_answers(docker, name)


def shipped_health_checks() -> dict[str, list[str]]:
    compose = yaml.safe_load((REPO / "compose" / "compose.yaml").read_text())
    test = compose["services"]["rabbitmq"]["healthcheck"]["test"]
    assert test[0] == "CMD", test
    # compose reads $$ as a literal $
    checks = {"compose healthcheck": [arg.replace("$$", "$") for arg in test[1:]]}
    for doc in yaml.safe_load_all((REPO / "k3s" / "base" / "rabbitmq.yaml").read_text()):
        if doc and doc.get("kind") == "StatefulSet":
            (container,) = doc["spec"]["template"]["spec"]["containers"]
            for probe in ("startupProbe", "readinessProbe"):
                checks[f"k3s {probe}"] = container[probe]["exec"]["command"]
    assert len(checks) == 3, checks
    return checks


def image_health_check(docker: str, container: str) -> list[str]:
    """The image's own HEALTHCHECK (a plain `docker run`), read from the image."""
    image = run([docker, "inspect", "-f", "{{.Config.Image}}", container], timeout_s=30)
    inspected = run([docker, "image", "inspect", image.stdout.strip()], timeout_s=30)
    test = json.loads(inspected.stdout)[0]["Config"]["Healthcheck"]["Test"]
    assert test[0] == "CMD", test
    return test[1:]


def test_the_shipped_health_checks_pass_on_the_broker(broker: tuple[str, str]) -> None:
    docker, name = broker
    checks = {**shipped_health_checks(), "image HEALTHCHECK": image_health_check(docker, name)}
    for what, command in checks.items():
        assert "rabbitmq-diagnostics" not in command, f"{what} starts a second Erlang VM"
        done = run([docker, "exec", name, *command], timeout_s=30)
        assert done.returncode == 0, f"{what} failed on a running broker: {done.stderr}"
