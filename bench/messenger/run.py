"""Messenger benchmark: draining 10,000 outbox messages to the local Mosquitto, acoustack against
acoupi's own MQTT messenger (the newest acoupi on PyPI, 0.8.x) in the same run.

`make bench-messenger` (or `uv run --frozen python bench/messenger/run.py`). BENCH_MESSAGES
changes the count.

acoustack: the storage service as a process on a scratch Postgres database, its outbox filled
with the messages, then one `acoustack.send_messages` run (the messenger's task, in this process)
with `messaging.max_per_run` = the count: QoS 1, a window of publishes in flight (up to the
broker's Receive Maximum), each message's PUBACK waited for and each response stored.
acoupi: its SqliteMessageStore filled with the same number of messages, drained by its own
generate_send_messages_task and MQTTMessenger (its defaults: QoS 0), in its own venv
(bench/messenger/.venv-acoupi, made on the first run). A subscriber counts what reaches the broker
from each: acoustack losing one fails the run; acoupi's losses are reported on stderr (its rate
counts what it believes it sent).

stdout carries exactly one line:
    messenger_msgs_per_s: X /s (reference Y /s, ratio Z x)
where Z = X / Y (higher is better for acoustack). Everything else goes to stderr.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support import log, scratch_database, storage_service

from acoustack import schema
from acoustack.celery_app import create_app
from acoustack.clients import StoreClient
from acoustack_messenger.tasks import MessengerContext, register_tasks

HERE = Path(__file__).resolve().parent
REFERENCE_VENV = HERE / ".venv-acoupi"
REFERENCE_PYTHON = REFERENCE_VENV / "bin" / "python"
REFERENCE_SPEC = "acoupi>=0.8,<0.9"
OVERRIDES = HERE.parent / "storage" / "reference-overrides.txt"  # PyAudio left out, as there
BROKER = ("127.0.0.1", 1883)
COUNT = int(os.environ.get("BENCH_MESSAGES", "10000"))
ARRIVAL_TIMEOUT_S = 10  # since the last arrival


class Counter:
    """What reaches the broker on ``topic``, counted by bench/messenger/count_arrivals.py in a
    process of its own."""

    def __init__(self, topic: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "count_arrivals.py"), *map(str, BROKER), topic,
             str(COUNT), str(ARRIVAL_TIMEOUT_S)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        if self.process.stdout.readline().strip() != "ready":
            raise SystemExit(f"could not subscribe to {topic} on {BROKER}: is Mosquitto running?")

    def wait_for(self, expected: int) -> int:
        out, _ = self.process.communicate(timeout=700)
        return int(out.strip() or 0)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def reference_version() -> str:
    if not REFERENCE_PYTHON.exists():
        return ""
    probe = subprocess.run(
        [str(REFERENCE_PYTHON), "-c", "from importlib.metadata import version; print(version('acoupi'))"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return probe.stdout.strip() if probe.returncode == 0 else ""


def ensure_reference_venv() -> None:
    if reference_version().startswith("0.8."):
        return
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        raise SystemExit("uv is needed to create the acoupi venv (bench/messenger/.venv-acoupi)")
    log(f"creating {REFERENCE_VENV} with {REFERENCE_SPEC}")
    if not REFERENCE_PYTHON.exists():
        subprocess.run([uv, "venv", "--python", "3.11", str(REFERENCE_VENV)], check=True,
                       stdout=sys.stderr)  # fmt: skip
    subprocess.run([uv, "pip", "install", "--python", str(REFERENCE_PYTHON), "--override",
                    str(OVERRIDES), REFERENCE_SPEC], check=True, stdout=sys.stderr)  # fmt: skip


def run_reference() -> tuple[float, str]:
    topic = f"bench/acoupi/{uuid.uuid4().hex[:8]}"
    counter = Counter(topic)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    try:
        finished = subprocess.run(
            [str(REFERENCE_PYTHON), str(HERE / "reference_acoupi.py"), str(COUNT), *map(str, BROKER),
             topic],
            env=env, cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            timeout=1800, check=True,
        )  # fmt: skip
        result = json.loads(finished.stdout)
        arrived = counter.wait_for(COUNT)
    finally:
        counter.close()
    log(f"acoupi {result['version']}: {result['sent']} sent in {result['seconds']:.2f} s, "
        f"{arrived} arrived")  # fmt: skip
    if arrived < COUNT:  # its QoS 0 publishes on a connection it opens again for every message
        log(f"acoupi: {COUNT - arrived} of the {COUNT} messages it counted as sent never arrived")
    return COUNT / result["seconds"], result["version"]


class BenchContext(MessengerContext):
    # Its own MQTT client id: the device id (the machine's hardware id on a scratch database) is
    # also every other acoustack's on this machine, and a test connecting with it while the
    # bench runs makes the broker drop the bench's connection mid-window.
    device_id = f"bench-messenger-{uuid.uuid4().hex[:8]}"


def run_acoustack() -> float:
    topic = f"bench/acoustack/{uuid.uuid4().hex[:8]}"
    with (
        scratch_database("bench_messenger") as database_url,
        storage_service(database_url) as target,
        StoreClient(target) as store,
        tempfile.TemporaryDirectory() as data_dir,
    ):
        for n in range(COUNT):
            store.store_message(schema.Message(content=json.dumps({"n": n, "bench": "acoustack"})))
        log(f"acoustack: {COUNT} messages in the outbox")
        context = BenchContext(target, Path(data_dir), store=store)
        tasks = register_tasks(create_app("memory://"), context)
        config = {"messaging": {"mqtt_host": BROKER[0], "mqtt_port": BROKER[1],
                                "mqtt_topic": topic, "max_per_run": COUNT,
                                "homeassistant_discovery": False}}  # fmt: skip
        counter = Counter(topic)
        try:
            started = time.perf_counter()
            result = tasks["send_messages"](program_config=config)
            elapsed = time.perf_counter() - started
            arrived = counter.wait_for(COUNT)
        finally:
            counter.close()
            context.close_messengers()
        left = store.count_messages()
    log(f"acoustack: {result['responses']} in {elapsed:.2f} s, {arrived} arrived, "
        f"{left.due + left.backing_off} left")  # fmt: skip
    if arrived < COUNT or left.due + left.backing_off:
        raise SystemExit(f"acoustack: {arrived} of {COUNT} messages reached the broker")
    return COUNT / elapsed


def main() -> None:
    ensure_reference_venv()
    ours = run_acoustack()
    reference, _version = run_reference()
    print(
        f"messenger_msgs_per_s: {ours:.0f} /s (reference {reference:.0f} /s, "
        f"ratio {ours / reference:.1f} x)"
    )


if __name__ == "__main__":
    main()
