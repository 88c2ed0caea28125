"""The whole device in containers: memory while the detection program runs, cold start, image sizes.

`make bench-stack` (the images built first: `make images`; cached layers make that quick). It
starts compose/compose.yaml under a project name of its own (`acoustack-bench-stack`), with fresh
volumes and the low-memory profile (compose/low-memory.env: one detection worker), the five
services with Postgres and RabbitMQ (no dashboard), then does what a user does: starts a
deployment through the scheduler's Control API with its checks (test recording, model self-check),
waits for the first detection stored, and watches the stack for BENCH_STACK_MEASURE_S seconds
(default 60) of recording and detecting, one sample a second. The stack and its volumes are removed
at the end, whatever happened. stdout:

    stack_services_rss: X MB      the five services, the highest sum over the samples
    stack_total_rss: X MB         the same with Postgres and RabbitMQ
    stack_services_anon: X MB     the five services' anonymous memory and tmpfs, the highest sum:
                                  the first figure less the file cache charged to them
    stack_cold_start_s: X s       `compose up` (images built, volumes new) to the first model
                                  output stored, the deployment started as soon as the Control
                                  API answered
    image_size_<image>_amd64: X MB            every image `make images` builds
    image_size_<image>_arm64: X MB            the same for the arm64 images, when they exist

A container's memory is what `docker stats` shows and what compose's `mem_limit` enforces: the
cgroup's usage less its inactive file cache, so a page shared by a container's processes (a
forked child's, a library's) counts once. Summing each process's RSS would count such pages once
per process. stderr gives, per container, that figure at the highest sample, the processes and
their PSS sum (shared pages split between the processes that map them) for comparison, and the
tmpfs pages in the figure (the recorder's: recordings waiting in the RAM-backed temporary area).
That file cache is what moves the first figure from run to run: a page of a file that several
containers read (Python's standard library in the shared base layer, a recording) is charged to
the first that read it, and stays there, so the same stack measured 378, 411 and 459 MB. stderr
says, per container, how much of its figure is anonymous memory, mapped files, tmpfs and other
file cache. MB here is MiB (as docker stats), image sizes are 10^6 bytes (as `docker images`).

BENCH_STACK_ENV_FILES (space-separated, default `compose/.env compose/low-memory.env`) picks
another profile: `BENCH_STACK_ENV_FILES=compose/.env make bench-stack` measures the Pi 4 default.
arm64 images are looked up as acoustack/<image>:<ACOUSTACK_VERSION>-arm64 (BENCH_STACK_ARM64_TAG);
a tag that is missing or not arm64 prints no line.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from acoustack.v1 import control_pb2, control_pb2_grpc, store_pb2, store_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "compose" / "compose.yaml"
DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")
PROJECT = "acoustack-bench-stack"
SERVICES = ("recorder", "detector", "storage", "messenger", "scheduler")
INFRASTRUCTURE = ("postgres", "rabbitmq")
IMAGES = ("postgres", "rabbitmq", "mosquitto", *SERVICES, "dashboard")
ENV_FILES = os.environ.get("BENCH_STACK_ENV_FILES", "compose/.env compose/low-memory.env").split()
MEASURE_S = float(os.environ.get("BENCH_STACK_MEASURE_S", "60"))
SAMPLE_INTERVAL_S = 1.0
FIRST_DETECTION_TIMEOUT_S = 240.0  # from `up`: a bound, far above the 60 s goal
UP_TIMEOUT_S = 120
RPC_TIMEOUT_S = 10.0
MIB = 1024 * 1024


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def env_value(name: str, default: str) -> str:
    if name in os.environ:
        return os.environ[name]
    for line in (REPO / "compose" / ".env").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip()
    return default


VERSION = env_value("ACOUSTACK_VERSION", "dev")
ARM64_TAG = os.environ.get("BENCH_STACK_ARM64_TAG", f"{VERSION}-arm64")


def run(args: list[str], timeout_s: float, env: dict[str, str] | None = None, check: bool = True):
    done = subprocess.run(
        args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if check and done.returncode != 0:
        raise RuntimeError(
            f"`{shlex.join(args)}` failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
            f"{done.stderr[-3000:]}"
        )
    return done


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- memory of one container ---


def cgroup_dir(container_id: str) -> Path | None:
    """The container's memory cgroup: v1 (cgroupfs or systemd driver) or v2."""
    for candidate in (
        Path("/sys/fs/cgroup/memory/docker") / container_id,
        Path("/sys/fs/cgroup/memory/system.slice") / f"docker-{container_id}.scope",
        Path("/sys/fs/cgroup/system.slice") / f"docker-{container_id}.scope",
        Path("/sys/fs/cgroup/docker") / container_id,
    ):
        if candidate.is_dir():
            return candidate
    return None


def memory_stat(directory: Path) -> dict[str, int]:
    return {
        name: int(value)
        for name, value in (
            line.split() for line in (directory / "memory.stat").read_text().splitlines()
        )
    }


def cgroup_memory_bytes(directory: Path) -> int:
    """Usage less inactive file cache, as `docker stats` computes it."""
    stat = memory_stat(directory)
    if (directory / "memory.usage_in_bytes").exists():  # v1
        usage = int((directory / "memory.usage_in_bytes").read_text())
        inactive = stat.get("total_inactive_file", 0)
    else:
        usage = int((directory / "memory.current").read_text())
        inactive = stat.get("inactive_file", 0)
    return usage - inactive if inactive < usage else usage


def cgroup_breakdown(directory: Path) -> dict[str, int]:
    """What the figure is made of: anonymous memory, mapped files (libraries, the model), tmpfs
    (the recorder's: recordings waiting in the RAM-backed temporary area), and the file cache on
    the kernel's active list (files read or written; it includes the mapped ones)."""
    stat = memory_stat(directory)

    def value(name: str) -> int:
        return stat.get(f"total_{name}", stat.get(name, 0))

    anon = value("rss") if "total_rss" in stat else value("anon")
    mapped = value("mapped_file") if "total_mapped_file" in stat else value("file_mapped")
    return {
        "anon": anon,
        "mapped files": mapped,
        "tmpfs": value("shmem"),
        "active file cache": value("active_file"),
    }


def pss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:  # the process ended between the listing and the read
        pass
    return 0


@dataclass
class Container:
    service: str
    id: str
    cgroup: Path | None
    peak: int = 0
    processes: list[str] = field(default_factory=list)
    pss: int = 0
    breakdown: dict[str, int] = field(default_factory=dict)

    def memory(self) -> int:
        if self.cgroup is not None:
            return cgroup_memory_bytes(self.cgroup)
        # No cgroup found (another layout): ask the engine, which is slower.
        done = run([DOCKER, "stats", "--no-stream", "--format", "{{json .}}", self.id], 30)
        used = json.loads(done.stdout)["MemUsage"].split("/")[0].strip()
        units = {"KiB": 1024, "MiB": MIB, "GiB": 1024 * MIB, "B": 1}
        for unit, factor in units.items():
            if used.endswith(unit):
                return int(float(used[: -len(unit)]) * factor)
        raise RuntimeError(f"docker stats gave an unknown unit: {used}")

    def describe_processes(self) -> None:
        """The container's processes (command and RSS) and their PSS sum, at this moment."""
        done = run([DOCKER, "top", self.id, "-eo", "pid,rss,args"], 30, check=False)
        self.processes, self.pss = [], 0
        self.breakdown = cgroup_breakdown(self.cgroup) if self.cgroup is not None else {}
        for line in done.stdout.splitlines()[1:]:
            pid, rss, command = line.split(None, 2)
            self.pss += pss_bytes(int(pid))
            self.processes.append(f"{int(rss) // 1024} MiB RSS: {command[:90]}")


# --- the stack ---


class Stack:
    def __init__(self, secrets_file: Path) -> None:
        self.env = dict(os.environ, ACOUSTACK_VERSION=VERSION)
        self.storage_port, self.control_port = free_port(), free_port()
        self.env["STORAGE_HOST_PORT"] = str(self.storage_port)
        self.env["SCHEDULER_HOST_PORT"] = str(self.control_port)
        self.env["DASHBOARD_HOST_PORT"] = str(free_port())
        files = [*ENV_FILES, str(secrets_file)]
        self.compose = [DOCKER, "compose", *(f"--env-file={f}" for f in files),
                        "-f", str(COMPOSE_FILE), "-p", PROJECT]  # fmt: skip

    def __call__(self, *args: str, timeout_s: float = 120, check: bool = True):
        return run([*self.compose, *args], timeout_s, self.env, check)

    def down(self) -> None:
        self("down", "--volumes", "--remove-orphans", "--timeout", "20", timeout_s=180)

    def containers(self) -> list[Container]:
        found = []
        for service in (*SERVICES, *INFRASTRUCTURE):
            container_id = self("ps", "-q", service).stdout.strip()
            if not container_id:
                raise RuntimeError(f"{service} has no container: {self.logs()}")
            found.append(Container(service, container_id, cgroup_dir(container_id)))
        return found

    def logs(self) -> str:
        return self("logs", "--no-color", "--tail", "30", check=False).stdout[-6000:]


def start_deployment(control: control_pb2_grpc.ControlStub, deadline: float) -> None:
    """As soon as the Control API answers: `acoustack deployment start`, with its checks."""
    request = control_pb2.ControlStartDeploymentRequest(name="bench", latitude=52.2, longitude=0.12)
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            reply = control.StartDeployment(request, timeout=60, wait_for_ready=False)
        except grpc.RpcError as exc:
            last = f"{exc.code().name}: {exc.details()}"
            # The scheduler answers before storage, the detector or the recorder are serving.
            time.sleep(0.5)
            continue
        failed = [c for c in reply.checks if not c.ok]
        for check in reply.checks:
            log(f"  check {check.component}: {'ok' if check.ok else 'FAILED'} {check.detail}")
        if failed:
            raise RuntimeError(f"the deployment's checks failed: {failed}")
        return
    raise RuntimeError(f"the deployment did not start: {last}")


def outputs_stored(store: store_pb2_grpc.StoreStub) -> int:
    entries = store.ListRecordings(
        store_pb2.ListRecordingsRequest(include_model_outputs=True, limit=1000),
        timeout=RPC_TIMEOUT_S,
    ).entries
    return sum(len(e.model_outputs) for e in entries)


def wait_first_detection(store: store_pb2_grpc.StoreStub, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if outputs_stored(store):
                return
        except grpc.RpcError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"no model output stored within {FIRST_DETECTION_TIMEOUT_S:.0f} s of up")


def held_bytes(container: Container) -> int:
    """Anonymous memory and tmpfs: what the container's processes hold themselves, without the
    file cache (a shared library's or Python file's pages are charged to whichever container
    read them first, so that part of the figure moves between containers from run to run)."""
    if container.cgroup is None:
        return 0
    parts = cgroup_breakdown(container.cgroup)
    return parts["anon"] + parts["tmpfs"]


def measure(containers: list[Container], duration_s: float) -> tuple[int, int, int]:
    """Sample every container once a second; the highest sums (services, all, and the services'
    anonymous memory and tmpfs) over the run."""
    services_peak = total_peak = held_peak = 0
    end = time.monotonic() + duration_s
    while time.monotonic() < end:
        sample = {c.service: c.memory() for c in containers}
        held_peak = max(held_peak, sum(held_bytes(c) for c in containers if c.service in SERVICES))
        services = sum(sample[s] for s in SERVICES)
        total = sum(sample.values())
        if total > total_peak:
            for c in containers:  # what each held at the highest total
                c.peak = sample[c.service]
                c.describe_processes()
        services_peak = max(services_peak, services)
        total_peak = max(total_peak, total)
        time.sleep(SAMPLE_INTERVAL_S)
    return services_peak, total_peak, held_peak


def image_lines() -> list[str]:
    lines = []
    for arch, tag in (("amd64", VERSION), ("arm64", ARM64_TAG)):
        for image in IMAGES:
            done = run(
                [DOCKER, "image", "inspect", "--format", "{{.Architecture}} {{.Size}}",
                 f"acoustack/{image}:{tag}"],
                30, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                if arch == "amd64":
                    log(f"acoustack/{image}:{tag} is missing: run `make images`")
                continue
            found_arch, size = done.stdout.split()
            if found_arch == arch:
                lines.append(f"image_size_{image}_{arch}: {int(size) / 1e6:.0f} MB")
    return lines


def main() -> int:
    log(f"profile: {' '.join(ENV_FILES)}; images acoustack/*:{VERSION}")
    with tempfile.TemporaryDirectory(prefix="bench-stack-") as scratch:
        secrets_file = Path(scratch) / "secrets.env"
        run(["make", "--no-print-directory", "secrets", f"SECRETS_FILE={secrets_file}"], 60,
            dict(os.environ, DOCKER=DOCKER))  # fmt: skip
        stack = Stack(secrets_file)
        stack.down()  # a run interrupted before
        try:
            started = time.monotonic()
            stack("up", "-d", "--no-build", "--pull", "never", *SERVICES, timeout_s=UP_TIMEOUT_S)
            deadline = started + FIRST_DETECTION_TIMEOUT_S
            with (
                grpc.insecure_channel(f"127.0.0.1:{stack.control_port}") as control_channel,
                grpc.insecure_channel(f"127.0.0.1:{stack.storage_port}") as store_channel,
            ):
                start_deployment(control_pb2_grpc.ControlStub(control_channel), deadline)
                log(f"deployment started {time.monotonic() - started:.1f} s after up")
                store = store_pb2_grpc.StoreStub(store_channel)
                wait_first_detection(store, deadline)
                cold_start_s = time.monotonic() - started
                log(f"first detection stored {cold_start_s:.1f} s after up")
                containers = stack.containers()
                services, total, held = measure(containers, MEASURE_S)
                log(f"{outputs_stored(store)} model outputs stored by the end")
            for c in containers:
                log(
                    f"{c.service}: {c.peak / MIB:.0f} MiB (PSS sum {c.pss / MIB:.0f} MiB; "
                    f"tmpfs {c.breakdown.get('tmpfs', 0) / MIB:.0f} MiB)"
                )
                log(
                    "    of which "
                    + ", ".join(f"{k} {v / MIB:.0f}" for k, v in c.breakdown.items())
                )
                for process in c.processes:
                    log(f"    {process}")
        except BaseException:
            log(stack.logs())
            raise
        finally:
            stack.down()
    print(f"stack_services_rss: {services / MIB:.0f} MB", flush=True)
    print(f"stack_total_rss: {total / MIB:.0f} MB", flush=True)
    print(f"stack_services_anon: {held / MIB:.0f} MB", flush=True)
    print(f"stack_cold_start_s: {cold_start_s:.1f} s", flush=True)
    for line in image_lines():
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
