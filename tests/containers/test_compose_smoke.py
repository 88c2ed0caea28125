"""The container stack end to end: compose/compose.yaml up, then a deployment through the CLI in
the scheduler container, recordings replayed, detected and filed, read over gRPC from the host.

It builds the images first (`make images`: cached layers make that quick when nothing changed;
ACOUSTACK_SMOKE_BUILD=0 skips it), starts the eight containers under a project name of its own
with storage and the scheduler on free host ports, and waits until every service is healthy. The
stack and its volumes are removed at the end, whatever happened. Without a Docker engine it fails
and says how to get one.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from acoustack.testing.servers import free_port
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


@dataclass
class Stack:
    compose: list[str]
    env: dict[str, str]
    storage: str  # storage's gRPC address on the host
    secrets: dict[str, str]  # the passwords `make secrets` made for this stack

    def exec(self, service: str, *command: str) -> subprocess.CompletedProcess[str]:
        return run([*self.compose, "exec", "-T", service, *command], timeout_s=180, env=self.env)

    def cli(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """`acoustack ...` inside the scheduler container, as the README tells users."""
        return self.exec("scheduler", "acoustack", *arguments)

    def logs(self) -> str:
        return run([*self.compose, "logs", "--no-color", "--tail", "40"], 60, self.env).stdout[
            -6000:
        ]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    """Start the stack under its own project name, with storage and the scheduler on free host
    ports."""
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

    # The passwords, as `make up` makes them (in a file of the test's own: the checkout's stays).
    secrets_file = tmp_path_factory.mktemp("secrets") / "secrets.env"
    made = run(["make", "--no-print-directory", "secrets", f"SECRETS_FILE={secrets_file}"], 60, env)
    assert made.returncode == 0, made.stdout + made.stderr
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    secrets = dict(
        line.split("=", 1)
        for line in secrets_file.read_text().splitlines()
        if line and not line.startswith("#")
    )
    password_file = Path(secrets.pop("MQTT_PASSWORD_FILE"))
    assert password_file.read_text() == secrets["MQTT_PASSWORD"]
    assert password_file.parent.stat().st_mode & 0o777 == 0o700
    assert set(secrets) == {"POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "MQTT_PASSWORD"}
    port = free_port()
    project = f"acoustack-smoke-{uuid.uuid4().hex[:8]}"
    env["STORAGE_HOST_PORT"] = str(port)
    env["SCHEDULER_HOST_PORT"] = str(free_port())
    env["DASHBOARD_HOST_PORT"] = str(free_port())
    env["COMPOSE_PROFILES"] = "mqtt"  # with the stack's own Mosquitto, which wants a password
    compose = [docker, "compose", "--env-file", str(COMPOSE_FILE.parent / ".env"),
               "--env-file", str(secrets_file), "-f", str(COMPOSE_FILE), "-p", project]  # fmt: skip
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
        yield Stack(compose, env, f"127.0.0.1:{port}", secrets)
    finally:
        down = run(
            [*compose, "down", "--volumes", "--remove-orphans", "--timeout", "20"],
            timeout_s=DOWN_TIMEOUT_S,
            env=env,
        )
        assert down.returncode == 0, f"compose down failed: {down.stderr[-2000:]}"


@pytest.fixture(scope="module")
def store(stack: Stack) -> Iterator[store_pb2_grpc.StoreStub]:
    with grpc.insecure_channel(stack.storage) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=30)
        except grpc.FutureTimeoutError:
            pytest.fail(f"storage did not accept a gRPC connection on {stack.storage} within 30 s")
        yield store_pb2_grpc.StoreStub(channel)


# An HTTP endpoint inside the stack (in the scheduler's container, which the test started): it
# answers 200 to every POST and appends the request's Device id header and body to a file.
SINK = """
import http.server, json
class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open("/tmp/sink.jsonl", "a") as out:
            out.write(json.dumps({"device": self.headers.get("X-Device-Id"),
                                  "body": body.decode()}) + "\\n")
        self.send_response(200)
        self.end_headers()
    def do_OPTIONS(self):
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8099), Sink).serve_forever()
"""
SINK_URL = "http://scheduler:8099/in"


def guano_serial(stack: Stack, path: str) -> str:
    """The Serial a WAV file's GUANO block carries, read in storage's container."""
    found = stack.exec(
        "storage", "python", "-c",
        "import re, sys; data = open(sys.argv[1], 'rb').read(); "
        "print(re.search(rb'Serial: ?([^\\n]+)', data).group(1).decode())",
        path,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    return found.stdout.strip()


def received(stack: Stack) -> list[dict]:
    read = stack.exec("scheduler", "sh", "-c", "cat /tmp/sink.jsonl 2>/dev/null || true")
    return [json.loads(line) for line in read.stdout.splitlines() if line.strip()]


def detected(store: store_pb2_grpc.StoreStub) -> list[store_pb2.RecordingEntry]:
    entries = store.ListRecordings(
        store_pb2.ListRecordingsRequest(include_model_outputs=True, limit=1000),
        timeout=RPC_TIMEOUT_S,
    ).entries
    return [e for e in entries if e.model_outputs]


@pytest.mark.timeout(BUILD_TIMEOUT_S + UP_TIMEOUT_S + DOWN_TIMEOUT_S + 300)
def test_the_device_records_detects_and_files_recordings(
    stack: Stack, store: store_pb2_grpc.StoreStub
) -> None:
    """What a field engineer does after `make up`: check, deploy, watch, stop; all through the
    CLI inside the scheduler container, with the five services in their own containers."""
    # Messages and heartbeats to an HTTP endpoint every few seconds: set through the CLI, acting
    # at the next run without a restart.
    sink = run([*stack.compose, "exec", "-d", "-T", "scheduler", "python", "-c", SINK], 60,
               stack.env)  # fmt: skip
    assert sink.returncode == 0, sink.stderr
    for field, value in (
        ("messaging.http_url", SINK_URL),
        ("messaging.interval_s", "5"),
        ("heartbeat.interval_s", "5"),
    ):
        changed = stack.cli("config", "set", "--field", field, value)
        assert changed.returncode == 0, changed.stdout + changed.stderr
    checked = stack.cli("check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for component in ("recorder: test recording", "detector: model", "storage"):
        assert re.search(rf"^{component}\s+ok\b", checked.stdout, re.MULTILINE), checked.stdout
    started = stack.cli("deployment", "start", "--name", "smoke", "--latitude", "51.5",
                        "--longitude", "-0.12")  # fmt: skip
    assert started.returncode == 0, started.stdout + started.stderr
    # The bundled bat recordings, replayed in 3 s slots every 10 s, found by BatDetect2.
    deadline = time.monotonic() + 90
    while len(detected(store)) < 2:
        assert time.monotonic() < deadline, "no detections stored within 90 s:\n" + stack.logs()
        time.sleep(1)
    assert any(len(e.model_outputs[0].detections) > 0 for e in detected(store))
    # One device, one id: on its recordings, in their GUANO, on its messages and heartbeats.
    device = store.GetDevice(store_pb2.GetDeviceRequest(), timeout=RPC_TIMEOUT_S).device_id
    recording = detected(store)[0].recording
    assert recording.device_id == device
    assert guano_serial(stack, recording.path) == device
    deadline = time.monotonic() + 60
    while not (
        any('"metrics"' in r["body"] for r in received(stack))
        and any('"detections"' in r["body"] for r in received(stack))
    ):
        assert time.monotonic() < deadline, f"no heartbeat and message: {received(stack)}"
        time.sleep(1)
    posts = received(stack)
    assert {r["device"] for r in posts} == {device}
    heartbeats = [json.loads(r["body"]) for r in posts if '"metrics"' in r["body"]]
    assert {h["device_id"] for h in heartbeats} == {device}
    status = stack.cli("status", "--json")
    assert status.returncode == 0, status.stderr
    reported = json.loads(status.stdout)
    queues = {q["name"]: q for q in reported["queues"]}
    for queue in ("recording", "detection", "files", "default"):
        assert queues[queue].get("workers", 0) >= 1, queues  # every queue has its worker
    assert reported["deployment"]["name"] == "smoke"
    assert reported["device_id"] == device
    stopped = stack.cli("deployment", "stop", "--flush-timeout", "60")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "detection: done" in stopped.stdout and "file management: done" in stopped.stdout
    # File management, with the detection program's shipped defaults, kept each recording with a
    # detection at least 0.5 confident in its date folder, and deleted the rest from the RAM area.
    for entry in detected(store):
        recording = entry.recording
        best = max(
            (d.detection_score for o in entry.model_outputs for d in o.detections), default=0
        )
        if best < 0.5:
            assert recording.status == types_pb2.RECORDING_STATUS_DELETED, recording
            assert stack.exec("storage", "test", "-e", recording.path).returncode != 0
            continue
        assert recording.status == types_pb2.RECORDING_STATUS_SAVED, recording
        day = recording.started_at.ToDatetime()
        assert recording.path.startswith(f"/recordings/{day:%Y/%m/%d}/"), recording.path
        assert stack.exec("storage", "test", "-s", recording.path).returncode == 0
    # Retention ran with the shipped floor (the stop's file-management run at the latest), and
    # status says so.
    after = stack.cli("status", "--json")
    assert after.returncode == 0, after.stderr
    retention = json.loads(after.stdout).get("retention", {})
    assert retention.get("keep_free_mb") == 1024, retention
    assert retention.get("keep_best_per_species") == 5, retention
    # The stack's Mosquitto (--profile mqtt): the messenger logs in with the generated password,
    # which it reads as a secret; anonymous clients are refused.
    for field, value in (
        ("messaging.mqtt_username", "acoustack"),
        ("messaging.mqtt_host", "mosquitto"),
    ):
        changed = stack.cli("config", "set", "--field", field, value)
        assert changed.returncode == 0, changed.stdout + changed.stderr
    password = stack.secrets["MQTT_PASSWORD"]
    heard = stack.exec(
        "mosquitto", "mosquitto_sub", "-u", "acoustack", "-P", password,
        "-t", "acoustack/messages", "-C", "1", "-W", "60",
    )  # fmt: skip
    assert heard.returncode == 0 and heard.stdout.strip(), heard.stderr + stack.logs()
    anonymous = stack.exec("mosquitto", "mosquitto_sub", "-t", "#", "-C", "1", "-W", "5")
    assert anonymous.returncode != 0 and "not authorised" in anonymous.stderr.lower()
    # No secret in what a user sees: the configuration, the status, every container's log.
    seen = "\n".join(
        [
            stack.cli("config", "get").stdout,
            stack.cli("status", "--json").stdout,
            run([*stack.compose, "logs", "--no-color"], 120, stack.env).stdout,
        ]
    )
    for name, value in stack.secrets.items():
        assert value not in seen, f"{name} is printed"
    # ... and each is in use: Postgres and RabbitMQ refuse the old development password.
    refused = stack.exec(
        "storage", "python", "-c",
        "import psycopg; psycopg.connect('postgresql://acoustack:acoustack@postgres/acoustack')",
    )  # fmt: skip
    assert refused.returncode != 0 and "password authentication failed" in refused.stderr


def test_the_dashboard_serves_its_pages_behind_the_generated_password(stack: Stack):
    """What the README tells a user: open http://DEVICE:8080/, find the first password in the
    dashboard's log or its data volume, sign in; the overview shows the device."""
    port = int(stack.env["DASHBOARD_HOST_PORT"])
    logs = run([*stack.compose, "logs", "--no-color", "dashboard"], 60, stack.env).stdout
    logged = re.search(r"login password generated: (\S+) \(shown this once", logs)
    assert logged, logs[-2000:]
    kept = stack.exec("dashboard", "cat", "/data/password")
    assert kept.returncode == 0 and kept.stdout.strip() == logged.group(1)
    # The recordings are mounted read-only.
    assert stack.exec("dashboard", "touch", "/recordings/x").returncode != 0

    def get(path, cookies="", body=None):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Cookie": cookies}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request("POST" if body is not None else "GET", path, body=body, headers=headers)
        response = connection.getresponse()
        return response, response.read().decode()

    response, page = get("/login")
    assert response.status == 200
    login_cookie = response.getheader("Set-Cookie").split(";", 1)[0]
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"csrf": token, "password": logged.group(1), "next": "/"})
    response, _ = get("/login", login_cookie, form)
    assert response.status == 303
    session = next(
        c.split(";", 1)[0] for c in response.headers.get_all("Set-Cookie") if "session=" in c
    )
    response, page = get("/", session)
    assert response.status == 200 and "Overview" in page and "Program <b>" in page


SERVICE_IMAGES = ("storage", "detector", "recorder", "messenger", "scheduler", "dashboard", "hub")


def image_layers(docker: str, image: str) -> list[str]:
    done = run([docker, "image", "inspect", "-f", "{{json .RootFS.Layers}}", image], 60, None)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def layer_sizes(docker: str, image: str) -> list[int]:
    """The sizes of the image's layers that hold files, oldest first (docker history)."""
    done = run([docker, "history", "--no-trunc", "--format", "{{.Size}}", "--human=false",
                image], 60, None)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [int(size) for size in reversed(done.stdout.split()) if int(size) > 0]


def test_the_service_images_share_one_layer_of_the_common_packages(stack: Stack):
    """What a card holds: the Python packages every service uses are one layer, the same in all
    seven images, so the card stores it once (and the device caches its files once)."""
    docker = stack.env["DOCKER"]
    # The tag the stack runs, as compose resolves it (the hub's image, not in this stack, has it too).
    images = run([*stack.compose, "config", "--images"], 60, stack.env)
    assert images.returncode == 0, images.stderr
    tag = next(i for i in images.stdout.split() if i.startswith("acoustack/storage:")).split(":")[1]
    layers = {name: image_layers(docker, f"acoustack/{name}:{tag}") for name in SERVICE_IMAGES}
    # Debian, its Python and the common venv: the first three layers of every image.
    shared = layers["storage"][:3]
    for name, chain in layers.items():
        assert chain[:3] == shared, f"acoustack/{name}:{tag} does not start with storage's layers"
        assert len(chain) > 3, f"acoustack/{name}:{tag} has no layer of its own"
    common_venv = layer_sizes(docker, f"acoustack/messenger:{tag}")[2]
    assert common_venv > 30_000_000, f"the shared venv layer is only {common_venv} bytes"
    # The messenger's own layer holds its package, not a second copy of the common ones.
    own = layer_sizes(docker, f"acoustack/messenger:{tag}")[-1]
    assert own < 5_000_000, f"the messenger's own venv layer is {own} bytes"
