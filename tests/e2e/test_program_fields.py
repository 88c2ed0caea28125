"""Every field of every built-in program acts: changed with `acoustack config set` against the
running services (the `make dev` launcher), each is seen within a run in what the device does,
then set back. No restart anywhere.

One stack runs the detection program, whose configuration holds every section the `default` and
`connected` programs have (the same sections, read by the same services), so the table below
covers the fields of all three; ``test_every_field_of_every_built_in_program_has_a_row`` fails
when a field is added without a row that shows it acting.

Observations go through the real store (recordings, outputs, the outbox and its responses), the
files on disk, the local Mosquitto and brokers and an HTTP server of the test's own.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from pydantic import BaseModel

from acoustack import cli, convert, schema
from acoustack.clients import StoreClient
from acoustack.healthcheck import check
from acoustack.testing.servers import free_port
from acoustack.time_windows import Site, SunWindow
from acoustack.v1 import control_pb2, control_pb2_grpc
from acoustack.v1 import store_pb2 as spb
from acoustack.v1 import types_pb2 as pb
from acoustack_devstack import AUDIO, MQTT_HOST, POSTGRES_ADMIN, DevStack, Ports
from acoustack_messenger.testing import Broker, Subscriber
from acoustack_scheduler.programs import BUILT_IN

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_MODEL = REPO / "examples" / "energy_model" / "energy_model.py"
SITE = Site(52.2053, 0.1218)
RUN_S = 2.0  # every periodic task runs this often in the test's base configuration
SLOW = 86_400.0  # an interval that does not come round during the test (aligned to midnight)


def dotted_fields(model: type[BaseModel], prefix: str = "") -> set[str]:
    found = set()
    for name, info in model.model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            found |= dotted_fields(kind, f"{prefix}{name}.")
        else:
            found.add(prefix + name)
    return found


def base_program(work: Path, topic: str) -> dict[str, dict[str, Any]]:
    return {
        "recording": {"duration_s": 0.5, "interval_s": RUN_S, "min_free_disk_mb": 10},
        # Every recording kept, so that each row sees its own field decide what goes (the
        # detection program's default keeps only recordings its saving filters accept).
        "file_management": {
            "interval_s": RUN_S,
            "destination": str(work / "recordings"),
            "save_all": True,
        },
        "messaging": {"interval_s": RUN_S, "mqtt_host": MQTT_HOST, "mqtt_topic": topic},
        "heartbeat": {"interval_s": SLOW},
        "summary": {"interval_s": SLOW},
    }


# --- servers the test starts --------------------------------------------------------------------


def _wait_port(host: str, port: int, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        assert process.poll() is None, f"{what} exited"
        assert time.monotonic() < deadline, f"{what} did not open {host}:{port}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def anonymous_broker(tmp_path_factory) -> Iterator[Broker]:
    """A second Mosquitto (anonymous) on a port of its own."""
    folder = tmp_path_factory.mktemp("anonymous-mosquitto")
    broker = Broker("127.0.0.1", free_port())
    (folder / "mosquitto.conf").write_text(
        f"listener {broker.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
    )
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    process = subprocess.Popen(
        [mosquitto, "-c", str(folder / "mosquitto.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(broker.host, broker.port, process, "the second Mosquitto")
        yield broker
    finally:
        process.terminate()
        process.wait(10)


def start_example_model(recordings_root: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE_MODEL), "--port", str(port),
         "--recordings-root", str(recordings_root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    target = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not check(target)[0]:
        assert process.poll() is None, "the example model server exited"
        assert time.monotonic() < deadline, "the example model server did not start"
        time.sleep(0.1)
    return process, target


# --- the device under test ----------------------------------------------------------------------


@dataclass
class Device:
    stack: DevStack
    store: StoreClient
    subscriber: Subscriber  # the stack's topic on the local Mosquitto
    topic: str
    changed: list[tuple[str, Any]] = field(default_factory=list)  # (field, value before)

    @property
    def control(self) -> list[str]:
        return ["--control", f"127.0.0.1:{self.stack.ports.scheduler}"]

    def get(self, dotted: str) -> Any:
        section, name = dotted.split(".")
        return self.config()[section][name]

    def config(self) -> dict:
        """The whole configuration, as `acoustack config get` shows it."""
        target = f"127.0.0.1:{self.stack.ports.scheduler}"
        with grpc.insecure_channel(target) as channel:
            reply = control_pb2_grpc.ControlStub(channel).GetConfig(
                control_pb2.GetConfigRequest(), timeout=10
            )
        return json.loads(reply.value_json)

    def set(self, dotted: str, value: Any) -> float:
        """`acoustack config set` as a user types it; the time it took effect."""
        before = self.get(dotted)
        text = value if isinstance(value, str) else json.dumps(value)
        assert cli.main(["config", "set", "--field", dotted, text, *self.control]) == 0, dotted
        self.changed.append((dotted, before))
        return time.time()

    def restore(self) -> None:
        while self.changed:
            dotted, before = self.changed.pop()
            text = before if isinstance(before, str) else json.dumps(before)
            assert cli.main(["config", "set", "--field", dotted, text, *self.control]) == 0

    def secret(self, name: str, value: str) -> None:
        """A secret the messenger can be pointed at, as compose or k3s would mount it."""
        self.stack.secrets_dir.mkdir(mode=0o700, exist_ok=True)
        path = self.stack.secrets_dir / name
        path.write_text(value)
        path.chmod(0o600)

    def run_task(self, name: str) -> None:
        assert cli.main(["task", "run", name, *self.control]) == 0

    # recordings

    def next_slot(self, after: float) -> float:
        """The first recording slot after ``after``: the first whose task carries what was set."""
        recording = self.config()["recording"]
        interval, offset = recording["interval_s"], recording["offset_s"]
        slot = (after - offset) // interval * interval + offset
        return slot + interval

    def recordings(self, since: float, statuses=None) -> list[spb.RecordingEntry]:
        filters: dict[str, Any] = {
            "started_from": dt.datetime.fromtimestamp(since, dt.UTC),
            "include_model_outputs": True,
            "limit": 1000,
        }
        if statuses is not None:
            filters["statuses"] = statuses
        return self.store.list_recordings(**filters)

    def wait_recordings(
        self, since: float, count: int = 1, timeout_s: float = 20, detected: bool = False
    ) -> list[pb.Recording]:
        """``count`` recordings started after ``since`` (with a model output, if ``detected``)."""
        deadline = time.monotonic() + timeout_s
        while True:
            entries = [e for e in self.recordings(since) if e.model_outputs or not detected]
            if len(entries) >= count:
                return sorted(
                    (e.recording for e in entries), key=lambda r: r.started_at.ToNanoseconds()
                )[:count]
            assert time.monotonic() < deadline, (
                f"{count} recording(s) after {since} expected, {len(entries)} found"
            )
            time.sleep(0.25)

    def wait_settled(self, since: float, count: int, timeout_s: float = 30) -> list[pb.Recording]:
        """``count`` recordings started after ``since`` that file management has dealt with."""
        temporary = pb.RECORDING_STATUS_TEMPORARY
        deadline = time.monotonic() + timeout_s
        while True:
            entries = sorted(
                self.recordings(since), key=lambda e: e.recording.started_at.ToNanoseconds()
            )[:count]
            if len(entries) == count and all(e.recording.status != temporary for e in entries):
                return [e.recording for e in entries]
            assert time.monotonic() < deadline, "file management did not deal with them in time"
            time.sleep(0.25)

    def outputs(self, since: float, count: int, timeout_s: float = 20) -> list[pb.ModelOutput]:
        deadline = time.monotonic() + timeout_s
        while True:
            found = [o for e in self.recordings(since) for o in e.model_outputs]
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, f"{count} model output(s) expected"
            time.sleep(0.25)

    def nothing_recorded(self, since: float, slots: int = 3) -> None:
        time.sleep(max(0.0, since - time.time()) + slots * self.config()["recording"]["interval_s"])
        assert self.recordings(since) == [], "recorded although the setting says not to"

    # messages

    def arrivals(self, seconds: float, subscriber: Subscriber | None = None) -> list[dict]:
        """What arrives on the topic within ``seconds``, as JSON."""
        subscriber = subscriber or self.subscriber
        subscriber.drain()
        time.sleep(seconds)
        # The topic itself: its availability subtopic says "online" and "offline".
        return [json.loads(r.payload) for r in subscriber.drain() if r.topic == subscriber.topic]

    def wait_arrival(
        self, kind: Callable[[dict], bool], subscriber: Subscriber | None = None, timeout_s=20
    ) -> dict:
        subscriber = subscriber or self.subscriber
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                received = subscriber.next(timeout_s=left, topic=subscriber.topic)
                payload = json.loads(received.payload)
            except AssertionError:
                break
            if kind(payload):
                return payload
        raise AssertionError("the expected message did not arrive")

    def responses(self, since: float, status=None) -> list[pb.Response]:
        found = self.store.list_responses(status=status, limit=1000)
        return [r for r in found if r.received_at.ToDatetime(dt.UTC).timestamp() >= since]

    def wait_response(self, since: float, status, timeout_s: float = 20) -> pb.Response:
        deadline = time.monotonic() + timeout_s
        while not (found := self.responses(since, status)):
            assert time.monotonic() < deadline, f"no {status} response"
            time.sleep(0.25)
        return found[0]

    def orphan(self) -> schema.Recording:
        """A recording stored without its detect task, as when the recorder lost power between
        storing it and handing it over; its file waits in the temporary area."""
        deployment = convert.deployment_from_proto(self.store.current_deployment())
        source = sorted(AUDIO.glob("*.wav"))[1]
        recording_id = uuid.uuid4()
        path = self.stack.work / "recordings" / "tmp" / f"orphan-{recording_id.hex[:8]}.wav"
        shutil.copy(source, path)
        with wave.open(str(path), "rb") as wav:
            rate, frames = wav.getframerate(), wav.getnframes()
        recording = schema.Recording(
            id=recording_id,
            deployment_id=deployment.id,
            device_id=self.store.device_id(),
            source_id="orphan",
            path=str(path),
            started_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1),  # out of the way
            duration_s=frames / rate,
            capture_samplerate_hz=rate,
        )
        self.store.store_recording(recording)
        return recording


@pytest.fixture(scope="module")
def device(tmp_path_factory, own_broker) -> Iterator[Device]:
    work = tmp_path_factory.mktemp("fields")
    name = f"acoustack_fields_{secrets.token_hex(4)}"
    topic = f"{name}/messages"
    stack = DevStack(
        work,
        name=name,
        ports=Ports(free_port(), free_port(), free_port(), free_port(), free_port()),
        program_config=base_program(work, topic),
        # The test's own broker speaks TLS with its own CA: trusted as a device would be told to.
        extra_environment={"messenger": {"SSL_CERT_FILE": str(own_broker.ca_file)}},
    )
    subscriber = None
    try:
        stack.up()
        subscriber = Subscriber(Broker(MQTT_HOST, 1883), topic)
        with StoreClient(f"127.0.0.1:{stack.ports.storage}") as store:
            target = ["--control", f"127.0.0.1:{stack.ports.scheduler}"]
            started = cli.main(
                ["deployment", "start", "--name", "fields", "--latitude", str(SITE.latitude),
                 "--longitude", str(SITE.longitude), "--skip-checks", *target]
            )  # fmt: skip
            assert started == 0
            made = Device(stack, store, subscriber, topic)
            made.wait_recordings(time.time() - 1, count=2, detected=True, timeout_s=60)
            yield made
    finally:
        if subscriber is not None:
            subscriber.close()
        stack.down()
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{stack.name}" WITH (FORCE)')
        subprocess.run(
            ["rabbitmqctl", "-q", "delete_vhost", stack.name], capture_output=True, check=False
        )


def hhmm(moment: dt.datetime) -> str:
    return f"{moment:%H:%M}"


def window_around_now(hours: float = 1) -> str:
    now = dt.datetime.now(dt.UTC)
    return f"{hhmm(now - dt.timedelta(hours=hours))}-{hhmm(now + dt.timedelta(hours=hours))}"


def window_away_from_now() -> str:
    now = dt.datetime.now(dt.UTC)
    return f"{hhmm(now + dt.timedelta(hours=2))}-{hhmm(now + dt.timedelta(hours=3))}"


def sun_window(includes_now: bool) -> str:
    """A sun window at the deployment that holds now (and the next minutes), or that does not."""
    if includes_now:
        return "dusk-12h+12h"  # a day around each dusk: always
    now = dt.datetime.now(dt.UTC)
    for text in ("dawn+1m", "sunrise+1m", "sunset+1m", "dusk+1m"):
        window = SunWindow.from_text(text)
        if not any(window.check(now + dt.timedelta(minutes=m), SITE) for m in range(-1, 4)):
            return text
    raise AssertionError("every sun event is within minutes of now")


def duty_cycle(includes_now: bool) -> str:
    """N/M keeping (or not) the minute now (UTC, the default save_timezone) and the next few."""
    now = dt.datetime.now(dt.UTC)
    minute = now.hour * 60 + now.minute
    for period in (1440, 720, 360, 180, 120, 60, 30, 20, 10, 5, 4, 3):
        for first in range(1, period):
            kept = [(minute + m) % period < first for m in range(4)]
            if all(kept) if includes_now else not any(kept):
                return f"{first}/{period}"
    raise AssertionError("no duty cycle found")


def best_score(entry_outputs) -> float | None:
    scores = [d.detection_score for o in entry_outputs for d in o.detections]
    return max(scores) if scores else None


def species(outputs) -> set[str]:
    return {
        t.tag.value for o in outputs for d in o.detections for t in d.tags if t.tag.key == "species"
    }


# --- one observation per field ------------------------------------------------------------------
# Each row sets its fields (restored afterwards by the test), and returns nothing: it asserts.


def recording_duration(device: Device) -> None:
    at = device.set("recording.duration_s", 1.0)
    [recording] = device.wait_recordings(device.next_slot(at))
    assert recording.duration_s == 1.0
    assert wav_frames(device, recording) == recording.capture_samplerate_hz  # a second of audio


def wav_frames(device: Device, recording: pb.Recording) -> int:
    """The frames of the recording's file, wherever file management has put it by now."""
    for _ in range(5):
        path = device.store.get_recording(recording.id).recording.path
        try:
            with wave.open(path, "rb") as wav:
                return wav.getnframes()
        except FileNotFoundError:  # moved between the two looks
            time.sleep(0.2)
    raise AssertionError(f"{recording.id}: no file")


def recording_interval(device: Device) -> None:
    at = device.set("recording.interval_s", 3)
    first, second, third = device.wait_recordings(device.next_slot(at), count=3, timeout_s=30)
    starts = [r.started_at.ToNanoseconds() / 1e9 for r in (first, second, third)]
    assert all(start % 3 < 0.9 for start in starts), starts  # on the 3 s boundaries
    assert [round(b - a) for a, b in itertools.pairwise(starts)] == [3, 3]


def recording_offset(device: Device) -> None:
    at = device.set("recording.offset_s", 1)
    recordings = device.wait_recordings(device.next_slot(at), count=2)
    assert all(1 <= r.started_at.ToNanoseconds() / 1e9 % RUN_S < 1.9 for r in recordings)


def recording_samplerate(device: Device) -> None:
    at = device.set("recording.samplerate_hz", 192_000)
    [recording] = device.wait_recordings(device.next_slot(at))
    assert recording.capture_samplerate_hz == 192_000


def recording_channels(device: Device) -> None:
    at = device.set("recording.channels", 2)
    [recording] = device.wait_recordings(device.next_slot(at))
    assert recording.channels == 2


def recording_time_expansion(device: Device) -> None:
    at = device.set("recording.time_expansion", 10)
    [recording] = device.wait_recordings(device.next_slot(at))
    assert recording.time_expansion == 10
    assert recording.capture_samplerate_hz == 384_000  # the capture rate is kept


def recording_daily_windows(device: Device) -> None:
    at = device.set("recording.daily_windows", window_away_from_now())
    device.nothing_recorded(device.next_slot(at))
    at = device.set("recording.daily_windows", window_around_now())
    device.wait_recordings(device.next_slot(at))


def recording_timezone(device: Device) -> None:
    device.set("recording.daily_windows", window_around_now())
    at = device.set("recording.timezone", "Asia/Kathmandu")  # UTC+5:45: outside the window
    device.nothing_recorded(device.next_slot(at))


def recording_sun_window(device: Device) -> None:
    at = device.set("recording.sun_window", sun_window(includes_now=False))
    device.nothing_recorded(device.next_slot(at))
    at = device.set("recording.sun_window", sun_window(includes_now=True))
    device.wait_recordings(device.next_slot(at))


def recording_min_free_disk(device: Device) -> None:
    # The retention floor must stay above the recorder's: off, the recorder's is the last word.
    device.set("file_management.keep_free_mb", 0)
    at = device.set("recording.min_free_disk_mb", 10**9)  # more than any disk here
    device.nothing_recorded(device.next_slot(at))


def file_management_interval(device: Device) -> None:
    at = device.set("file_management.interval_s", SLOW)
    [recording] = device.wait_recordings(device.next_slot(at), detected=True)
    time.sleep(3 * RUN_S)  # runs every RUN_S before: now none comes
    assert device.store.get_recording(recording.id).recording.status == (
        pb.RECORDING_STATUS_TEMPORARY
    )
    device.set("file_management.interval_s", RUN_S)
    device.wait_settled(recording.started_at.ToNanoseconds() / 1e9, 1)


def settled_after_change(device: Device, at: float, count: int = 4) -> list[spb.RecordingEntry]:
    since = device.next_slot(at)
    recordings = device.wait_settled(since, count)
    return [device.store.get_recording(r.id, include_model_outputs=True) for r in recordings]


def file_management_save_all(device: Device) -> None:
    # A filter no recording passes: while save_all is true it is not asked, and all are kept.
    at = device.set("file_management.saving_threshold", 0.999)
    assert _statuses(settled_after_change(device, at, 3)) == {pb.RECORDING_STATUS_SAVED}
    at = device.set("file_management.save_all", False)
    for entry in settled_after_change(device, at, 3):
        best = best_score(entry.model_outputs)
        kept = best is not None and best >= 0.999
        assert (entry.recording.status == pb.RECORDING_STATUS_SAVED) == kept, entry.recording
    assert pb.RECORDING_STATUS_DELETED in _statuses(settled_after_change(device, at, 3))


def file_management_destination(device: Device) -> None:
    elsewhere = device.stack.work / "elsewhere"
    at = device.set("file_management.destination", str(elsewhere))
    [entry] = settled_after_change(device, at, 1)
    assert Path(entry.recording.path).is_relative_to(elsewhere)
    assert Path(entry.recording.path).is_file()


def file_management_saving_threshold(device: Device) -> None:
    device.set("file_management.save_all", False)
    at = device.set("file_management.saving_threshold", 0.99)
    for entry in settled_after_change(device, at, 4):
        best = best_score(entry.model_outputs)
        kept = best is not None and best >= 0.99
        assert (entry.recording.status == pb.RECORDING_STATUS_SAVED) == kept


def _filter_only(device: Device, name: str, value: Any) -> float:
    """save_all off and a single saving filter: ``name``."""
    device.set(f"file_management.{name}", value)
    device.set("file_management.save_all", False)
    return device.set("file_management.saving_threshold", None)


def _statuses(entries) -> set[int]:
    return {e.recording.status for e in entries}


def file_management_save_daily_windows(device: Device) -> None:
    at = _filter_only(device, "save_daily_windows", window_around_now())
    assert _statuses(settled_after_change(device, at, 3)) == {pb.RECORDING_STATUS_SAVED}
    at = device.set("file_management.save_daily_windows", window_away_from_now())
    assert _statuses(settled_after_change(device, at, 3)) == {pb.RECORDING_STATUS_DELETED}


def file_management_save_timezone(device: Device) -> None:
    _filter_only(device, "save_daily_windows", window_around_now())
    at = device.set("file_management.save_timezone", "Asia/Kathmandu")
    assert _statuses(settled_after_change(device, at, 3)) == {pb.RECORDING_STATUS_DELETED}


def file_management_save_sun_window(device: Device) -> None:
    at = _filter_only(device, "save_sun_window", sun_window(includes_now=True))
    assert _statuses(settled_after_change(device, at, 3)) == {pb.RECORDING_STATUS_SAVED}
    at = device.set("file_management.save_sun_window", sun_window(includes_now=False))
    assert _statuses(settled_after_change(device, at, 3)) == {pb.RECORDING_STATUS_DELETED}


def file_management_save_duty_cycle(device: Device) -> None:
    at = _filter_only(device, "save_duty_cycle", duty_cycle(includes_now=True))
    assert _statuses(settled_after_change(device, at, 3)) == {pb.RECORDING_STATUS_SAVED}
    at = device.set("file_management.save_duty_cycle", duty_cycle(includes_now=False))
    assert _statuses(settled_after_change(device, at, 3)) == {pb.RECORDING_STATUS_DELETED}


def _seen_species(device: Device) -> str:
    seen = species(device.outputs(time.time() - 600, 1))
    assert seen, "no species found in the replayed recordings"
    return sorted(seen)[0]


def file_management_save_tags(device: Device) -> None:
    kept_species = _seen_species(device)
    at = _filter_only(device, "save_tags", [f"species={kept_species}"])
    deadline = time.monotonic() + 60
    decisions: set[bool] = set()
    while decisions != {True, False}:
        for entry in settled_after_change(device, at, 3):
            tagged = kept_species in species(entry.model_outputs)
            assert (entry.recording.status == pb.RECORDING_STATUS_SAVED) == tagged
            decisions.add(tagged)
        assert time.monotonic() < deadline, f"saw only {decisions}"
        at = time.time()


def file_management_save_tags_threshold(device: Device) -> None:
    kept_species = _seen_species(device)
    _filter_only(device, "save_tags", [f"species={kept_species}"])
    at = device.set("file_management.save_tags_threshold", 1.0)  # no tag is that sure
    assert _statuses(settled_after_change(device, at, 4)) == {pb.RECORDING_STATUS_DELETED}


def file_management_saving_managers(device: Device) -> None:
    at = device.set("file_management.saving_managers", ["id"])
    [entry] = settled_after_change(device, at, 1)
    destination = Path(device.get("file_management.destination"))
    assert Path(entry.recording.path) == destination / f"{entry.recording.id}.wav"


def _confidence_folder(entry, destination: Path) -> str | None:
    if entry.recording.status != pb.RECORDING_STATUS_SAVED:
        return None
    return Path(entry.recording.path).relative_to(destination).parts[0]


def file_management_confident_threshold(device: Device) -> None:
    destination = Path(device.get("file_management.destination"))
    device.set("file_management.saving_managers", ["confidence_folders", "date_folders"])
    at = device.set("file_management.confident_threshold", 0.2)  # every detection is confident
    for entry in settled_after_change(device, at, 3):
        best = best_score(entry.model_outputs)
        expected = (
            "confident" if best is not None else f"{entry.recording.started_at.ToDatetime():%Y}"
        )
        assert _confidence_folder(entry, destination) == expected


def file_management_unconfident_threshold(device: Device) -> None:
    destination = Path(device.get("file_management.destination"))
    device.set("file_management.saving_managers", ["confidence_folders"])
    device.set("file_management.confident_threshold", 1.0)
    at = device.set("file_management.unconfident_threshold", 0.0)  # all below 1: unconfident
    for entry in settled_after_change(device, at, 3):
        if best_score(entry.model_outputs) is None:
            assert entry.recording.status == pb.RECORDING_STATUS_DELETED  # no manager took it
        else:
            assert _confidence_folder(entry, destination) == "unconfident"


def file_management_file_name_time_format(device: Device) -> None:
    at = device.set("file_management.file_name_time_format", "night-%H%M%S")
    [entry] = settled_after_change(device, at, 1)
    started = entry.recording.started_at.ToDatetime(dt.UTC)
    assert Path(entry.recording.path).name.startswith(f"night-{started:%H%M%S}-")


def _saved_before(device: Device, count: int = 2) -> list[pb.Recording]:
    """Recordings saved under the destination (where retention looks), at least ``count``."""
    destination = Path(device.get("file_management.destination"))

    def saved() -> list[pb.Recording]:
        entries = device.recordings(0, statuses=[pb.RECORDING_STATUS_SAVED])
        return [e.recording for e in entries if Path(e.recording.path).is_relative_to(destination)]

    if len(saved()) < count:
        device.wait_settled(time.time(), count)
    return saved()


def _wait_deleted(device: Device, recordings, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while any(
        device.store.get_recording(r.id).recording.status != pb.RECORDING_STATUS_DELETED
        for r in recordings
    ):
        assert time.monotonic() < deadline, "retention deleted nothing"
        time.sleep(0.25)
    assert not any(Path(r.path).exists() for r in recordings)


def file_management_retention_days(device: Device) -> None:
    saved = _saved_before(device)
    time.sleep(2)
    device.set("file_management.keep_best_per_species", 0)  # the best would outlive the limit
    device.set("file_management.retention_days", 1 / 86_400)  # a second
    _wait_deleted(device, saved)


def file_management_keep_free_mb(device: Device) -> None:
    saved = _saved_before(device)
    device.set("file_management.keep_best_per_species", 0)  # the few saved here are all the best
    device.set("file_management.keep_free_mb", 10**9)  # more than any disk: delete for space
    _wait_deleted(device, saved)


def _species_best(entries) -> dict[str, float]:
    """Each species' most confident detection among these recordings."""
    best: dict[str, float] = {}
    for entry in entries:
        for output in entry.model_outputs:
            for detection in output.detections:
                for tag in detection.tags:
                    if tag.tag.key == "species":
                        best[tag.tag.value] = max(best.get(tag.tag.value, 0.0), tag.confidence)
    return best


def file_management_keep_best_per_species(device: Device) -> None:
    _saved_before(device, 3)
    # Nothing new is recorded meanwhile, so the ranking is over what is saved now.
    at = device.set("recording.daily_windows", window_away_from_now())
    time.sleep(RUN_S)
    device.wait_settled(at - 600, len(device.recordings(at - 600)), timeout_s=30)
    destination = Path(device.get("file_management.destination"))
    saved = [
        device.store.get_recording(e.recording.id, include_model_outputs=True)
        for e in device.recordings(0, statuses=[pb.RECORDING_STATUS_SAVED])
        if Path(e.recording.path).is_relative_to(destination)
    ]
    device.set("file_management.keep_best_per_species", 1)
    device.set("file_management.keep_free_mb", 10**9)  # space is short for ever here
    time.sleep(3 * RUN_S)
    kept = [
        entry
        for entry in saved
        if device.store.get_recording(entry.recording.id).recording.status
        == pb.RECORDING_STATUS_SAVED
    ]
    assert 0 < len(kept) < len(saved), "retention kept all or nothing"
    # Each species keeps the recording holding its most confident detection, and no other.
    assert _species_best(kept) == _species_best(saved)
    assert len(kept) <= len(_species_best(saved))


def messaging_interval(device: Device) -> None:
    device.set("messaging.interval_s", SLOW)
    time.sleep(RUN_S)
    assert device.arrivals(3 * RUN_S) == []
    device.set("messaging.interval_s", RUN_S)
    device.wait_arrival(lambda payload: "model_output_id" in payload)


def _backlog(device: Device, count: int = 3) -> None:
    device.set("messaging.interval_s", SLOW)
    # A send the old interval had already queued may still run and drain the outbox: let it
    # pass before counting what waits.
    time.sleep(RUN_S + 1)
    deadline = time.monotonic() + 30
    while len(device.store.get_unsent_messages(limit=100)) < count:
        assert time.monotonic() < deadline, "no backlog built up"
        time.sleep(0.25)


def messaging_max_per_run(device: Device) -> None:
    _backlog(device)
    device.set("messaging.max_per_run", 1)
    device.subscriber.drain()
    device.run_task("send-messages")
    assert len(device.arrivals(3)) == 1


def messaging_order(device: Device) -> None:
    _backlog(device)
    device.set("messaging.max_per_run", 1)
    device.set("messaging.order", "newest-first")
    _backlog(device)  # what a send started meanwhile took is made up again
    newest = device.store.get_unsent_messages(limit=1, newest_first=True)[0]
    oldest = device.store.get_unsent_messages(limit=1)[0]
    device.subscriber.drain()
    device.run_task("send-messages")
    [sent] = device.arrivals(3)
    assert sent != json.loads(oldest.content)
    assert sent["created_at"] >= json.loads(newest.content)["created_at"]


def messaging_http_url(device: Device, http_sink) -> None:
    device.set("messaging.http_url", f"{http_sink.url}/ok")
    deadline = time.monotonic() + 20
    while not http_sink.posts():
        assert time.monotonic() < deadline, "nothing was POSTed"
        time.sleep(0.25)
    assert json.loads(http_sink.posts()[0].body)["model_output_id"]


def messaging_http_content_type(device: Device, http_sink) -> None:
    device.set("messaging.http_content_type", "application/vnd.acoustack+json")
    device.set("messaging.http_url", f"{http_sink.url}/ok")
    deadline = time.monotonic() + 20
    while not http_sink.posts():
        assert time.monotonic() < deadline, "nothing was POSTed"
        time.sleep(0.25)
    assert http_sink.posts()[0].headers["Content-Type"] == "application/vnd.acoustack+json"


def messaging_http_timeout(device: Device, http_sink) -> None:
    device.set("messaging.http_timeout_s", 1)
    at = device.set("messaging.http_url", f"{http_sink.url}/slow")  # answers after 3 s
    response = device.wait_response(at, schema.ResponseStatus.TIMEOUT)
    assert "no answer within 1 s" in response.content


def messaging_mqtt_host(device: Device) -> None:
    at = device.set("messaging.mqtt_host", "")
    time.sleep(RUN_S)
    assert device.arrivals(3 * RUN_S) == []
    assert device.responses(at + RUN_S) == []  # nowhere to send: messages wait


def messaging_mqtt_port(device: Device, anonymous_broker) -> None:
    elsewhere = Subscriber(anonymous_broker, device.topic)
    try:
        device.set("messaging.mqtt_port", anonymous_broker.port)
        device.wait_arrival(lambda payload: "model_output_id" in payload, elsewhere)
    finally:
        elsewhere.close()


def messaging_mqtt_topic(device: Device) -> None:
    topic = f"{device.topic}-renamed"
    elsewhere = Subscriber(Broker(MQTT_HOST, 1883), topic)
    try:
        device.set("messaging.mqtt_topic", topic)
        device.wait_arrival(lambda payload: "model_output_id" in payload, elsewhere)
    finally:
        elsewhere.close()


def messaging_mqtt_backlog_topic(device: Device) -> None:
    # Everything older than a millisecond is backlog: the next detection goes to its topic.
    topic = f"{device.topic}-backlog"
    backlog = Subscriber(Broker(MQTT_HOST, 1883), topic)
    try:
        device.set("messaging.mqtt_backlog_age_s", 0.001)
        device.set("messaging.mqtt_backlog_topic", topic)
        device.wait_arrival(lambda payload: "model_output_id" in payload, backlog)
    finally:
        backlog.close()


def messaging_mqtt_backlog_age(device: Device) -> None:
    # The same backlog topic: a millisecond's age sends the detections there, a day's keeps
    # the next ones (made after the change) on mqtt_topic.
    topic = f"{device.topic}-backlog"
    backlog = Subscriber(Broker(MQTT_HOST, 1883), topic)
    try:
        device.set("messaging.mqtt_backlog_topic", topic)
        device.set("messaging.mqtt_backlog_age_s", 0.001)
        device.wait_arrival(lambda payload: "model_output_id" in payload, backlog)
    finally:
        backlog.close()
    at = device.set("messaging.mqtt_backlog_age_s", 86400)
    device.wait_arrival(
        lambda payload: (
            "model_output_id" in payload
            and dt.datetime.fromisoformat(payload["created_at"]).timestamp() > at
        )
    )


def _own_broker(device: Device, own_broker, listener: Broker, **fields: Any) -> Subscriber:
    """The test's broker, which takes alice with the password in the secret mqtt_password (what
    messaging.mqtt_password_secret names by default)."""
    device.secret("mqtt_password", own_broker.password)
    watcher = Subscriber(
        own_broker.plain, device.topic, username=own_broker.username, password=own_broker.password
    )
    device.set("messaging.mqtt_username", own_broker.username)
    for name, value in fields.items():
        device.set(f"messaging.{name}", value)
    device.set("messaging.mqtt_port", listener.port)
    return watcher


def wait_response_saying(device: Device, since: float, words: str, timeout_s=30) -> pb.Response:
    deadline = time.monotonic() + timeout_s
    while not (found := [r for r in device.responses(since) if words in r.content]):
        assert time.monotonic() < deadline, f"no response saying {words!r}"
        time.sleep(0.25)
    return found[0]


def messaging_mqtt_username(device: Device, own_broker) -> None:
    watcher = _own_broker(device, own_broker, own_broker.plain)
    try:
        device.wait_arrival(lambda payload: "model_output_id" in payload, watcher)
        at = device.set("messaging.mqtt_username", "mallory")
        wait_response_saying(device, at, "refused the connection")
    finally:
        watcher.close()


def messaging_mqtt_password_secret(device: Device, own_broker) -> None:
    at = time.time()
    device.secret("old_mqtt_password", "not-the-password")
    watcher = _own_broker(
        device, own_broker, own_broker.plain, mqtt_password_secret="old_mqtt_password"
    )
    try:
        refused = wait_response_saying(device, at, "refused the connection")
        assert "messaging.mqtt_password_secret" in refused.content
        device.set("messaging.mqtt_password_secret", "mqtt_password")
        device.wait_arrival(lambda payload: "model_output_id" in payload, watcher)
        # The configuration names the secret; neither the CLI nor the messenger's log prints it.
        assert own_broker.password not in json.dumps(device.config())
        log = (device.stack.work / "logs" / "messenger.log").read_text(errors="replace")
        assert own_broker.password not in log
    finally:
        watcher.close()


def messaging_mqtt_tls(device: Device, own_broker) -> None:
    at = time.time()
    watcher = _own_broker(device, own_broker, own_broker.tls, mqtt_timeout_s=2)
    try:
        wait_response_saying(device, at, "messaging.mqtt_tls")  # plain MQTT to a TLS port
        device.set("messaging.mqtt_tls", True)
        device.wait_arrival(lambda payload: "model_output_id" in payload, watcher)
    finally:
        watcher.close()


def messaging_mqtt_transport(device: Device, own_broker) -> None:
    watcher = _own_broker(
        device, own_broker, own_broker.websockets, mqtt_transport="websockets",
    )  # fmt: skip
    try:
        device.wait_arrival(lambda payload: "model_output_id" in payload, watcher)
    finally:
        watcher.close()


def messaging_mqtt_timeout(device: Device, silent_server) -> None:
    device.set("messaging.mqtt_timeout_s", 1)
    at = device.set("messaging.mqtt_port", silent_server)  # accepts, never answers
    response = device.wait_response(at, schema.ResponseStatus.TIMEOUT)
    assert "within 1 s" in response.content


def _refused_by_http(device: Device, http_sink, **fields: Any) -> float:
    """Only the HTTP sink, which refuses every message for good (400), with these fields set."""
    device.set("messaging.mqtt_host", "")
    for name, value in fields.items():
        device.set(f"messaging.{name}", value)
    return device.set("messaging.http_url", f"{http_sink.url}/reject")


def _tried_since(
    device: Device, at: float, state, timeout_s: float = 20, refusals: int | None = None
) -> list:
    deadline = time.monotonic() + timeout_s
    while True:
        found = [
            e
            for e in device.store.list_messages(state, limit=1000)
            if e.message.last_attempt_at.ToDatetime(dt.UTC).timestamp() >= at
            and refusals in (None, e.message.refusals)
        ]
        if found:
            return found
        assert time.monotonic() < deadline, f"no message {state} after a try since the change"
        time.sleep(0.25)


def _waits_s(entries: list) -> list[float]:
    now = time.time()
    return [e.message.next_attempt_at.ToDatetime(dt.UTC).timestamp() - now for e in entries]


def messaging_retry_backoff(device: Device, http_sink) -> None:
    at = _refused_by_http(device, http_sink, retry_backoff_s=1000)
    waits = _waits_s(_tried_since(device, at, schema.MessageState.BACKING_OFF))
    assert all(400 < w <= 1000 for w in waits), waits  # [1/2, 1] x 1000 s, not the default 60


def messaging_retry_backoff_max(device: Device, http_sink) -> None:
    at = _refused_by_http(device, http_sink, retry_backoff_s=1000, retry_backoff_max_s=2)
    waits = _waits_s(_tried_since(device, at, schema.MessageState.BACKING_OFF))
    assert all(w <= 2 for w in waits), waits


def messaging_dead_after_refusals(device: Device, http_sink) -> None:
    at = _refused_by_http(device, http_sink, dead_after_refusals=1)  # the default is 3
    # A message first tried after the change dies at its first refusal.
    dead = _tried_since(device, at, schema.MessageState.DEAD, refusals=1)
    assert dead[0].last_response.content.startswith("HTTP 400 Bad Request")
    assert http_sink.posts()  # really sent and refused


def messaging_homeassistant_prefix(device: Device) -> None:
    prefix = f"{device.topic}-ha"
    watcher = Subscriber(Broker(MQTT_HOST, 1883), prefix)
    try:
        device.set("messaging.homeassistant_prefix", prefix)
        arrived = watcher.next(timeout_s=20)
        assert arrived.topic.startswith(f"{prefix}/sensor/acoustack_")
        assert json.loads(arrived.payload)["device"]["serial_number"] == device.store.device_id()
    finally:
        watcher.close()


def messaging_homeassistant_discovery(device: Device) -> None:
    prefix = f"{device.topic}-ha-off"
    watcher = Subscriber(Broker(MQTT_HOST, 1883), prefix)
    try:
        device.set("messaging.homeassistant_discovery", False)
        device.set("messaging.homeassistant_prefix", prefix)
        device.wait_arrival(lambda payload: "model_output_id" in payload)  # messaging goes on
        assert watcher.drain() == []  # and nothing is announced
        device.set("messaging.homeassistant_discovery", True)
        assert watcher.next(timeout_s=20).topic.startswith(f"{prefix}/sensor/")
    finally:
        watcher.close()


def summary_interval(device: Device) -> None:
    device.set("summary.interval_s", RUN_S)
    summary = device.wait_arrival(lambda payload: payload.get("kind") == "summary")
    assert summary["device_id"] == device.store.device_id()


def summary_tag_key(device: Device) -> None:
    """The example model server tags its detections event=band-energy: with summary.tag_key
    `event` the summary counts them, where the default `species` finds none of its tags."""
    server, target = start_example_model(device.stack.work / "recordings")
    try:
        device.set("detection.model", f"grpc://{target}")
        at = device.set("summary.tag_key", "event")
        device.set("summary.interval_s", RUN_S)

        def made_since_and_counting(payload: dict) -> bool:
            # A summary of an earlier test may still be on its way from the outbox: only one
            # whose window starts after the change tells whether the change acted.
            if payload.get("kind") != "summary" or not payload["species"]:
                return False
            return dt.datetime.fromisoformat(payload["window"]["start"]).timestamp() >= at

        summary = device.wait_arrival(made_since_and_counting, timeout_s=40)
        assert summary["tag_key"] == "event"
        assert set(summary["species"]) == {"band-energy"}
    finally:
        device.restore()
        server.terminate()


def heartbeat_interval(device: Device) -> None:
    assert not [p for p in device.arrivals(RUN_S) if "metrics" in p]
    device.set("heartbeat.interval_s", RUN_S)
    beat = device.wait_arrival(lambda payload: "metrics" in payload)
    assert beat["device_id"] == device.store.device_id()


def detection_model(device: Device) -> None:
    server, target = start_example_model(device.stack.work / "recordings")
    try:
        at = device.set("detection.model", f"grpc://{target}")
        since = device.next_slot(at)
        outputs = device.outputs(since, 2)
        assert {o.model_name for o in outputs} == {"energy-band"}
    finally:
        device.restore()
        server.terminate()
        server.wait(10)


def detection_model_send_audio(device: Device) -> None:
    blind = device.stack.work / "not-the-recordings"
    blind.mkdir(exist_ok=True)
    server, target = start_example_model(blind)  # cannot read the device's files
    try:
        device.set("detection.model_send_audio", True)
        at = device.set("detection.model", f"grpc://{target}")
        outputs = device.outputs(device.next_slot(at), 2)
        assert {o.model_name for o in outputs} == {"energy-band"}
    finally:
        device.restore()
        server.terminate()
        server.wait(10)


def detection_extra_models(device: Device) -> None:
    """The example server beside the bundled model: every recording gets both outputs, and file
    management files it only once the required extra one is stored."""
    server, target = start_example_model(device.stack.work / "recordings")
    try:
        at = device.set(
            "detection.extra_models", [{"model": f"grpc://{target}", "name": "energy-band"}]
        )
        since = device.next_slot(at)
        settled = device.wait_settled(since, 2, timeout_s=60)
        for recording in settled:
            entry = device.store.get_recording(recording.id, include_model_outputs=True)
            names = {o.model_name for o in entry.model_outputs}
            assert "energy-band" in names and len(names) == 2, names
    finally:
        device.restore()
        server.terminate()
        server.wait(10)


def detection_threshold(device: Device) -> None:
    before = device.outputs(time.time() - 120, 3)
    assert any(d.detection_score < 0.9 for o in before for d in o.detections)
    at = device.set("detection.threshold", 0.9)
    outputs = device.outputs(device.next_slot(at), 3)
    assert all(d.detection_score >= 0.9 for o in outputs for d in o.detections)


def detection_message_threshold(device: Device) -> None:
    at = device.set("detection.message_threshold", 0.6)
    since = device.next_slot(at) + 1  # messages of recordings made from then on
    deadline = time.monotonic() + 30
    checked = 0
    while checked < 3:
        assert time.monotonic() < deadline, "no message built under the message threshold"
        payload = device.wait_arrival(lambda p: "model_output_id" in p)
        if dt.datetime.fromisoformat(payload["created_at"]).timestamp() < since:
            continue
        assert payload["detections"] and all(
            d["detection_score"] >= 0.6 for d in payload["detections"]
        )
        checked += 1


def detection_resend_after(device: Device) -> None:
    left_behind = device.orphan()
    time.sleep(3 * RUN_S)  # the default (600 s) does not come round
    entry = device.store.get_recording(left_behind.id, include_model_outputs=True)
    assert not entry.model_outputs
    device.set("detection.resend_after_s", 2)
    deadline = time.monotonic() + 30
    while not device.store.get_recording(left_behind.id, include_model_outputs=True).model_outputs:
        assert time.monotonic() < deadline, "the recording left behind was never detected"
        time.sleep(0.25)


def detection_resend_attempts(device: Device) -> None:
    device.set("detection.resend_attempts", 0)
    device.set("detection.resend_after_s", 2)
    left_behind = device.orphan()
    deadline = time.monotonic() + 30
    while (found := device.store.get_recording(left_behind.id).recording).status != (
        pb.RECORDING_STATUS_FAILED
    ):
        assert time.monotonic() < deadline, "the recording was not marked failed"
        time.sleep(0.25)
    assert "after 0 more detect task(s)" in found.failure_reason


ROWS: dict[str, Callable[..., None]] = {
    "recording.duration_s": recording_duration,
    "recording.interval_s": recording_interval,
    "recording.offset_s": recording_offset,
    "recording.samplerate_hz": recording_samplerate,
    "recording.channels": recording_channels,
    "recording.time_expansion": recording_time_expansion,
    "recording.daily_windows": recording_daily_windows,
    "recording.timezone": recording_timezone,
    "recording.sun_window": recording_sun_window,
    "recording.min_free_disk_mb": recording_min_free_disk,
    "file_management.interval_s": file_management_interval,
    "file_management.save_all": file_management_save_all,
    "file_management.destination": file_management_destination,
    "file_management.saving_threshold": file_management_saving_threshold,
    "file_management.save_daily_windows": file_management_save_daily_windows,
    "file_management.save_timezone": file_management_save_timezone,
    "file_management.save_sun_window": file_management_save_sun_window,
    "file_management.save_duty_cycle": file_management_save_duty_cycle,
    "file_management.save_tags": file_management_save_tags,
    "file_management.save_tags_threshold": file_management_save_tags_threshold,
    "file_management.saving_managers": file_management_saving_managers,
    "file_management.confident_threshold": file_management_confident_threshold,
    "file_management.unconfident_threshold": file_management_unconfident_threshold,
    "file_management.file_name_time_format": file_management_file_name_time_format,
    "file_management.retention_days": file_management_retention_days,
    "file_management.keep_free_mb": file_management_keep_free_mb,
    "file_management.keep_best_per_species": file_management_keep_best_per_species,
    "messaging.interval_s": messaging_interval,
    "messaging.max_per_run": messaging_max_per_run,
    "messaging.order": messaging_order,
    "messaging.retry_backoff_s": messaging_retry_backoff,
    "messaging.retry_backoff_max_s": messaging_retry_backoff_max,
    "messaging.dead_after_refusals": messaging_dead_after_refusals,
    "messaging.http_url": messaging_http_url,
    "messaging.http_content_type": messaging_http_content_type,
    "messaging.http_timeout_s": messaging_http_timeout,
    "messaging.mqtt_host": messaging_mqtt_host,
    "messaging.mqtt_port": messaging_mqtt_port,
    "messaging.mqtt_topic": messaging_mqtt_topic,
    "messaging.mqtt_username": messaging_mqtt_username,
    "messaging.mqtt_password_secret": messaging_mqtt_password_secret,
    "messaging.mqtt_tls": messaging_mqtt_tls,
    "messaging.mqtt_transport": messaging_mqtt_transport,
    "messaging.mqtt_timeout_s": messaging_mqtt_timeout,
    "messaging.mqtt_backlog_topic": messaging_mqtt_backlog_topic,
    "messaging.mqtt_backlog_age_s": messaging_mqtt_backlog_age,
    "messaging.homeassistant_discovery": messaging_homeassistant_discovery,
    "messaging.homeassistant_prefix": messaging_homeassistant_prefix,
    "summary.interval_s": summary_interval,
    "summary.tag_key": summary_tag_key,
    "heartbeat.interval_s": heartbeat_interval,
    "detection.model": detection_model,
    "detection.model_send_audio": detection_model_send_audio,
    "detection.threshold": detection_threshold,
    "detection.message_threshold": detection_message_threshold,
    "detection.resend_after_s": detection_resend_after,
    "detection.resend_attempts": detection_resend_attempts,
    "detection.extra_models": detection_extra_models,
}

PROGRAM_FIELDS = {
    (name, dotted)
    for name, program in BUILT_IN.items()
    for dotted in dotted_fields(program.config_schema)
}


def test_every_field_of_every_built_in_program_has_a_row():
    missing = sorted(f"{name}: {dotted}" for name, dotted in PROGRAM_FIELDS if dotted not in ROWS)
    assert not missing, f"fields no row shows acting: {missing}"
    assert set(ROWS) <= {dotted for _, dotted in PROGRAM_FIELDS}, "a row for no field"


@pytest.mark.timeout(240)
@pytest.mark.parametrize("dotted", list(ROWS))
def test_the_field_acts_at_the_next_run(dotted, device, request):
    row = ROWS[dotted]
    fixtures = {
        name: request.getfixturevalue(name)
        for name in row.__code__.co_varnames[1 : row.__code__.co_argcount]
    }
    try:
        row(device, **fixtures)
    finally:
        device.restore()
