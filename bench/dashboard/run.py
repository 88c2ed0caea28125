"""Dashboard benchmark: its pages over HTTP on a store holding 30 days of the storage benchmark's
data (2,880 recordings x 200 detections), with real storage and scheduler processes, the
dashboard as a process of its own (its memory measured alone), and a 3 s recording at 384 kHz
whose spectrogram is rendered afresh each time (the cache is off).

`make bench-dashboard` (or `uv run --frozen python bench/dashboard/run.py`).

stdout, one line per figure:
    dashboard_overview_p95: X ms              GET / (the scheduler's status: health, queues, latest)
    dashboard_detections_page_p95: X ms       GET /detections (the newest 50 of 576,000)
    dashboard_activity_30d_p95: X ms          GET /activity: a night by hour, 5 weeks by day
    dashboard_spectrogram_3s_384khz: X ms     GET the PNG, rendered (median)
    dashboard_rss: X MB                       the dashboard's peak resident memory (VmHWM)

The dashboard gets the environment its image and compose give it (shipped_environment): its
memory depends on glibc's settings there (MALLOC_ARENA_MAX).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import yaml

BENCH = Path(__file__).resolve().parents[1]
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))  # the shared support module
sys.path.insert(0, str(BENCH / "storage"))  # the storage benchmark's workload
import acoustack_side  # noqa: E402
import workload  # noqa: E402
from support import log, scratch_database, service_process, storage_service  # noqa: E402

from acoustack import convert, schema  # noqa: E402
from acoustack.testing.servers import free_port  # noqa: E402
from acoustack_storage.migrate import apply_migrations  # noqa: E402
from acoustack_storage.repository import PostgresStore  # noqa: E402

DAYS = 30
REQUESTS = 40
SPECTROGRAMS = 15
AMQP_BASE = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def prefill(store: PostgresStore, recordings: Path) -> tuple[schema.Deployment, uuid.UUID]:
    """30 days of the storage benchmark's recordings and outputs, and one real 3 s WAV."""
    deployment = store.start_deployment(
        schema.Deployment(name="bench", latitude=52.2, longitude=0.12)
    )
    last = None
    for index in range(DAYS * workload.RECORDINGS_PER_DAY):
        recording = acoustack_side.schema_recording(index, str(deployment.id))
        store.store_recording(recording)
        store.store_model_output(
            convert.model_output_to_proto(acoustack_side.schema_model_output(index, recording))
        )
        last = (index, recording)
    # The spectrogram's recording: 3 s of noise with a sweep, 16-bit PCM at 384 kHz, saved.
    rate = 384_000
    t = np.arange(3 * rate) / rate
    audio = 0.05 * np.random.default_rng(0).standard_normal(len(t)) + 0.4 * np.sin(
        2 * np.pi * (30_000 + 20_000 * t) * t
    )
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    path = recordings / "2024" / "bench-3s.wav"
    path.parent.mkdir(parents=True)
    header = (
        b"RIFF" + (36 + len(pcm)).to_bytes(4, "little") + b"WAVEfmt "
        + (16).to_bytes(4, "little") + (1).to_bytes(2, "little") + (1).to_bytes(2, "little")
        + rate.to_bytes(4, "little") + (rate * 2).to_bytes(4, "little")
        + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
        + b"data" + len(pcm).to_bytes(4, "little")
    )  # fmt: skip
    path.write_bytes(header + pcm)
    index, template = last
    recording = template.model_copy(
        update={"id": uuid.uuid4(), "path": str(path), "duration_s": 3.0,
                "capture_samplerate_hz": rate, "status": schema.RecordingStatus.SAVED,
                "started_at": template.started_at + dt.timedelta(seconds=30)}
    )  # fmt: skip
    store.store_recording(recording)
    store.store_model_output(
        convert.model_output_to_proto(acoustack_side.schema_model_output(index, recording))
    )
    return deployment, recording.id


@contextlib.contextmanager
def vhost() -> Iterator[str]:
    name = f"bench_dashboard_{secrets.token_hex(4)}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
                   check=True, capture_output=True)  # fmt: skip
    try:
        yield AMQP_BASE + name
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], capture_output=True)


def shipped_environment() -> dict[str, str]:
    """What the dashboard's image and compose put in its process's environment (Python's and
    glibc's settings, such as MALLOC_ARENA_MAX), read from the Dockerfile's last stage and from
    compose/compose.yaml with compose/.env, so the memory measured is that of the process as it
    ships. Its wiring (DASHBOARD_*) and PATH are the benchmark's own."""
    # ENV of the last stage and of the stages it is built FROM, the base's first.
    stages: dict[str, tuple[str, dict[str, str]]] = {}
    base, stage_env = "", {}
    dockerfile = (REPO / "services" / "dashboard" / "Dockerfile").read_text()
    for line in dockerfile.replace("\\\n", " ").splitlines():
        words = line.split()
        if words[:1] == ["FROM"]:
            base, stage_env = words[1], {}
            if len(words) == 4 and words[2].upper() == "AS":
                stages[words[3]] = (base, stage_env)
        elif words[:1] == ["ENV"]:
            stage_env.update(word.split("=", 1) for word in words[1:])
    chain = [stage_env]
    while base in stages:
        base, parent_env = stages[base]
        chain.insert(0, parent_env)
    env = {k: v for layer in chain for k, v in layer.items()}
    defaults = dict(
        line.split("=", 1)
        for line in (REPO / "compose" / ".env").read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )
    compose = yaml.safe_load((REPO / "compose" / "compose.yaml").read_text())
    for name, value in compose["services"]["dashboard"]["environment"].items():
        value = str(value)
        if match := re.fullmatch(r"\$\{(\w+)\}", value):
            if match[1] not in defaults:
                raise RuntimeError(f"compose's dashboard {name}: {value} is not in compose/.env")
            value = defaults[match[1]]
        env[name] = value
    return {k: v for k, v in env.items() if not k.startswith("DASHBOARD_") and k != "PATH"}


@contextlib.contextmanager
def dashboard_process(env: dict[str, str], port: int):
    process = subprocess.Popen(
        [sys.executable, "-m", "acoustack_dashboard"],
        env={**os.environ, **shipped_environment(), **env},
        stdout=sys.stderr, stderr=sys.stderr,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the dashboard did not start (its log is above)")
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        process.wait(20)


class Browser:
    """Keeps the session cookie and one keep-alive connection, as a browser tab does."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, bytes]:
        headers = {"Host": f"127.0.0.1:{self.port}",
                   "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}  # fmt: skip
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        for line in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = line.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return response.status, data

    def login(self, password: str) -> None:
        _, page = self.request("GET", "/login")
        token = re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()
        status, _ = self.request(
            "POST", "/login", urllib.parse.urlencode({"csrf": token, "password": password})
        )
        assert status == 303, f"login failed: {status}"

    def timed_ms(self, path: str, count: int) -> list[float]:
        status, _ = self.request("GET", path)  # warm: first connections, first template use
        assert status == 200, f"{path}: {status}"
        times = []
        for _ in range(count):
            started = time.perf_counter()
            status, _ = self.request("GET", path)
            times.append((time.perf_counter() - started) * 1000)
            assert status == 200, f"{path}: {status}"
        return times


def p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20)[-1]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def main() -> int:
    with (
        scratch_database("bench_dashboard") as url,
        tempfile.TemporaryDirectory() as scratch,
        vhost() as broker,
    ):
        with psycopg.connect(url) as conn:
            apply_migrations(conn)
        recordings = Path(scratch) / "recordings"
        store = PostgresStore.open(url)
        started = time.monotonic()
        log(
            f"prefilling {DAYS} days ({DAYS * workload.RECORDINGS_PER_DAY} recordings x 200 detections) …"
        )
        _deployment, spectrogram_id = prefill(store, recordings)
        store.close()
        # As on a device after days of use, autovacuum has analyzed the tables by now: plans use
        # their real sizes (right after a bulk load they would be planned as empty).
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        log(f"  {time.monotonic() - started:.0f} s")
        with storage_service(url) as storage:
            control_port, web_port = free_port(), free_port()
            scheduler_env = {
                "SCHEDULER_BROKER_URL": broker, "SCHEDULER_STORAGE_TARGET": storage,
                "SCHEDULER_CONFIG_FILE": str(Path(scratch) / "program.json"),
                "SCHEDULER_GRPC_HOST": "127.0.0.1", "SCHEDULER_GRPC_PORT": str(control_port),
                "SCHEDULER_DISK_PATH": scratch, "SCHEDULER_LOG_LEVEL": "WARNING",
            }  # fmt: skip
            password = secrets.token_urlsafe(16)
            dashboard_env = {
                "DASHBOARD_STORAGE_TARGET": storage,
                "DASHBOARD_CONTROL_TARGET": f"127.0.0.1:{control_port}",
                "DASHBOARD_BROKER_URL": broker, "DASHBOARD_RECORDINGS_ROOT": str(recordings),
                "DASHBOARD_DATA_DIR": str(Path(scratch) / "dashboard"),
                "DASHBOARD_PASSWORD": password, "DASHBOARD_SPECTROGRAM_CACHE_MB": "0",
                "DASHBOARD_HTTP_HOST": "127.0.0.1", "DASHBOARD_HTTP_PORT": str(web_port),
                "DASHBOARD_LOG_LEVEL": "WARNING",
            }  # fmt: skip
            log(f"  the dashboard's environment as shipped: {shipped_environment()}")
            with (
                service_process("acoustack_scheduler", scheduler_env, control_port),
                dashboard_process(dashboard_env, web_port) as dashboard,
            ):
                browser = Browser(web_port)
                browser.login(password)
                last = workload.recording(DAYS * workload.RECORDINGS_PER_DAY - 1).started_at
                night = (last - dt.timedelta(hours=12)).date()
                timed = {
                    "dashboard_overview_p95": ("/", REQUESTS, p95),
                    "dashboard_detections_page_p95": ("/detections", REQUESTS, p95),
                    "dashboard_activity_30d_p95": (
                        f"/activity?night={night}&weeks=5", REQUESTS, p95,
                    ),
                    "dashboard_spectrogram_3s_384khz": (
                        f"/recordings/{spectrogram_id}/spectrogram.png", SPECTROGRAMS,
                        statistics.median,
                    ),
                }  # fmt: skip
                figures = {}
                log(f"  dashboard RSS after the login: {peak_rss_mb(dashboard.pid):.1f} MB")
                for name, (path, count, summary) in timed.items():
                    times = browser.timed_ms(path, count)
                    figures[name] = summary(times)
                    log(f"  {name}: median {statistics.median(times):.1f} ms, max "
                        f"{max(times):.1f} ms; dashboard peak RSS so far "
                        f"{peak_rss_mb(dashboard.pid):.1f} MB")  # fmt: skip
                rss = peak_rss_mb(dashboard.pid)
    for name, value in figures.items():
        print(f"{name}: {value:.1f} ms")
    print(f"dashboard_rss: {rss:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
