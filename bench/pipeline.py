"""Pipeline benchmark: recordings per second through record → detect → store → outbox.

`make bench-pipeline`. The real services run as local processes (the `make dev` launcher with other
settings): storage, the detector (DETECTOR_CONCURRENCY workers, the null model of null_model.py over
gRPC) and the recorder (the synthetic source, as fast as it can), against the local Postgres
(database acoustack_bench) and RabbitMQ (vhost acoustack_bench), every port a free loopback one.
The harness keeps the `recording` queue fed with record tasks and, after a warm-up, counts for
BENCH_SECONDS the recordings whose model output (and its outbox message) was stored. Then the
reference: one Python process doing the same steps in a loop with storage's repository, against a
fresh database on the same Postgres server, as a monolith would. stdout:

    pipeline_recordings_per_s: X /s (reference Y /s, ratio Z x)    (ratio: ours / reference)
    pipeline_latency_p95: X ms                                      (WAV written → output stored)

Latency, per output stored in the window: from the WAV's mtime (its last write, before the fsync
and rename; the recordings stay in the temporary area, as nothing manages files here) to the
moment Postgres inserted the output row: the benchmark adds ``bench_stored_at DEFAULT
clock_timestamp()`` to model_outputs in its own databases (the commit follows in the same storage
call). Both clocks are this machine's wall clock.

stderr: the configuration; per process, its share of a core and its CPU milliseconds per recording
over the window (what limits the pipeline, and what a recording costs in all); queue depths; the
same for the reference, and its own latency.

Settings: BENCH_SECONDS (60), BENCH_WARMUP_SECONDS (5), BENCH_REFERENCE_SECONDS (= BENCH_SECONDS),
BENCH_DETECTOR_CONCURRENCY (2), BENCH_RECORDERS (1: one microphone), BENCH_LOG_LEVEL (WARNING),
BENCH_NAME (acoustack_bench), DEV_POSTGRES_URL / DEV_AMQP_URL (the launcher's: local by default).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/: null_model
from null_model import null_output

from acoustack import convert, schema
from acoustack.celery_app import create_app
from acoustack.clients import StoreClient
from acoustack.components import FullModelOutputMessageBuilder, ThresholdDetectionCleaner
from acoustack.healthcheck import check
from acoustack.names import Queue, RecordArguments, Task
from acoustack.testing.servers import free_port
from acoustack.wire_validation import check_model_output
from acoustack_devstack import POSTGRES_ADMIN, REPO, SERVICES, DevStack, Ports
from acoustack_recorder.recorder import recording_from_guano
from acoustack_recorder.sources import SyntheticSource
from acoustack_recorder.wavfile import GuanoFields, write_recording
from acoustack_scheduler.beat_control import record_arguments
from acoustack_storage.migrate import apply_migrations
from acoustack_storage.repository import PostgresStore

SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
WARMUP_S = float(os.environ.get("BENCH_WARMUP_SECONDS", "5"))
REFERENCE_SECONDS = float(os.environ.get("BENCH_REFERENCE_SECONDS", str(SECONDS)))
DETECTOR_CONCURRENCY = int(os.environ.get("BENCH_DETECTOR_CONCURRENCY", "2"))
# One microphone by default; more recorders (one per microphone) show what detection can take.
RECORDERS = int(os.environ.get("BENCH_RECORDERS", "1"))
LOG_LEVEL = os.environ.get("BENCH_LOG_LEVEL", "WARNING")
NAME = os.environ.get("BENCH_NAME", "acoustack_bench")
WORK = REPO / "build" / "bench-pipeline"

# Short and at a low rate: the benchmark is about the plumbing per recording, not audio volume.
DURATION_S = 0.1
SAMPLERATE_HZ = 8_000
CHANNELS = 1
DETECTION_THRESHOLD = 0.2  # the detector's default, so both sides clean alike

# The recording queue is topped up to QUEUE_HIGH whenever it falls below QUEUE_LOW: always work
# waiting, never an unbounded backlog.
QUEUE_LOW = 100
QUEUE_HIGH = 200
FEED_POLL_S = 0.02
MAX_RATE_PER_S = 5_000  # bounds the tasks sent and the reference's loop, whatever happens
PROBE_TIMEOUT_S = 30.0
START_TIMEOUT_S = 90.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

PROGRAM_CONFIG = {
    "recording": {
        "duration_s": DURATION_S,
        "samplerate_hz": SAMPLERATE_HZ,
        "channels": CHANNELS,
        "min_free_disk_mb": 10,
    }
}

# Added to model_outputs in the benchmark's own databases: when each output row was inserted.
STORED_AT_COLUMN = (
    "ALTER TABLE model_outputs ADD COLUMN bench_stored_at timestamptz NOT NULL "
    "DEFAULT clock_timestamp()"
)
WINDOW_QUERY = """
    SELECT r.path, extract(epoch FROM r.created_at), extract(epoch FROM m.bench_stored_at)
    FROM model_outputs m JOIN recordings r ON r.id = m.recording_id
    WHERE m.bench_stored_at >= %s AND m.bench_stored_at < %s
"""


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def database_url(name: str) -> str:
    return POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def recreate_database(name: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def rabbitmqctl(*args: str, must_succeed: bool = True) -> None:
    subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, timeout=60, check=must_succeed
    )


@dataclass(frozen=True)
class Window:
    count: int
    seconds: float
    p50_ms: float
    p95_ms: float
    max_ms: float
    from_mtime: int  # latencies measured from the file's mtime (the rest: from created_at)

    @property
    def per_s(self) -> float:
        return self.count / self.seconds


def written_at(path: str, created_at: float) -> tuple[float, bool]:
    """When the WAV was written: its mtime (the last write, before fsync and rename). Only if the
    file is gone, the recording's created_at, which the recorder stamps a little later."""
    try:
        return os.stat(path).st_mtime_ns / 1e9, True
    except OSError:
        return created_at, False


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure_window(url: str, start: float, end: float) -> Window:
    """The outputs stored in [start, end) and, for each, the time from WAV written to stored."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(WINDOW_QUERY, (utc(start), utc(end))).fetchall()
    if not rows:
        raise RuntimeError(f"no model output was stored in the {end - start:.0f} s window")
    latencies, from_mtime = [], 0
    for path, created_at, stored_at in rows:
        written, exact = written_at(path, float(created_at))
        latencies.append(1000 * (float(stored_at) - written))
        from_mtime += exact
    latencies.sort()
    return Window(
        len(rows),
        end - start,
        percentile(latencies, 0.5),
        percentile(latencies, 0.95),
        latencies[-1],
        from_mtime,
    )


# --- CPU per process, to see which one limits the pipeline -------------------------------------


def process_table() -> dict[int, tuple[int, str, float]]:
    """pid → (parent pid, command name, CPU seconds so far) for every process we can read."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:  # gone, or not ours to read
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        table[int(entry.name)] = (
            int(fields[1]),
            comm,
            (int(fields[11]) + int(fields[12])) / CLOCK_TICKS,
        )
    return table


def tree_cpu(table: dict[int, tuple[int, str, float]], roots: list[int]) -> float:
    """CPU seconds of ``roots`` and all their descendants (a worker may run in spawned children)."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0.0, list(roots), set()
    while todo and len(seen) < len(table):
        pid = todo.pop()
        if pid in seen or pid not in table:
            continue
        seen.add(pid)
        total += table[pid][2]
        todo.extend(children.get(pid, []))
    return total


def machine_busy_s() -> float:
    """CPU seconds spent on anything but idle and I/O wait, all cores, since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal; guest time is already inside user and nice.
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLOCK_TICKS


@dataclass
class CpuWatch:
    """Groups of processes (name → root pids) whose CPU is compared between two snapshots."""

    groups: dict[str, Callable[[], list[int]]]
    # Counted without descendants: the harness is the parent of every service.
    alone: frozenset[str] = frozenset()
    before: dict[str, float] | None = None
    after: dict[str, float] | None = None
    wall_s: float = 0.0
    machine_before: float = 0.0
    machine_s: float = 0.0

    def _sample(self) -> dict[str, float]:
        table = process_table()
        return {
            name: sum(table[p][2] for p in pids() if p in table)
            if name in self.alone
            else tree_cpu(table, pids())
            for name, pids in self.groups.items()
        }

    def start(self) -> None:
        self.before, self.wall_s = self._sample(), time.monotonic()
        self.machine_before = machine_busy_s()

    def stop(self) -> None:
        self.after, self.wall_s = self._sample(), time.monotonic() - self.wall_s
        self.machine_s = machine_busy_s() - self.machine_before

    def report(self, title: str, recordings: int) -> float:
        """Log each group's share of a core and CPU milliseconds per recording; return the total
        of the latter (what one recording costs the machine, all processes together)."""
        used = {name: self.after[name] - self.before[name] for name in self.groups}
        total = sum(used.values())
        log(f"{title}: CPU over the {self.wall_s:.0f} s window, % of one core and ms per recording")
        for name, seconds in sorted(used.items(), key=lambda kv: -kv[1]):
            share = 100 * seconds / self.wall_s
            log(f"  {name:<40} {share:6.1f} %  {1000 * seconds / recordings:6.2f} ms")
        per_recording_ms = 1000 * total / recordings
        log(
            f"  {'all of the above':<40} {100 * total / self.wall_s:6.1f} %  {per_recording_ms:6.2f} ms"
        )
        log(
            f"  {'(whole machine, anyone)':<40} {100 * self.machine_s / self.wall_s:6.1f} %  "
            f"of {100 * (os.cpu_count() or 1)} %"
        )
        return per_recording_ms


def pids_named(comm: str) -> list[int]:
    return [pid for pid, (_, name, _) in process_table().items() if name == comm]


# --- the services ------------------------------------------------------------------------------


@dataclass
class BenchStack(DevStack):
    """`make dev`'s launcher, re-aimed: a fresh database and vhost, free loopback ports, the
    synthetic source as fast as it goes, the null model, no scheduler (the harness feeds)."""

    model_port: int = 0
    temp_dir: Path = Path()
    recorders: int = 1

    def prepare(self) -> None:
        recreate_database(self.name)
        # A new vhost: no tasks left from an earlier run.
        rabbitmqctl("delete_vhost", self.name, must_succeed=False)
        rabbitmqctl("add_vhost", self.name)
        rabbitmqctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")
        for folder in (self.work / "logs", self.temp_dir, *(self.data_dir(s) for s in SERVICES)):
            folder.mkdir(parents=True, exist_ok=True)

    def environments(self) -> dict[str, dict[str, str]]:
        envs = super().environments()
        temporary_area = {
            "ACOUSTACK_TEMP_DIR": str(self.temp_dir),
            "ACOUSTACK_TEMP_FALLBACK_DIR": str(self.temp_dir),
        }
        envs["storage"].update(STORAGE_LOG_LEVEL=LOG_LEVEL, **temporary_area)
        envs["detector"].update(
            DETECTOR_CONCURRENCY=str(DETECTOR_CONCURRENCY), DETECTOR_LOG_LEVEL=LOG_LEVEL
        )
        envs["recorder"].update(
            RECORDER_SOURCE="synthetic",
            RECORDER_SYNTHETIC_REAL_TIME="false",
            RECORDER_LOG_LEVEL=LOG_LEVEL,
            **temporary_area,
        )
        return envs

    def task_program_config(self) -> dict:
        """What each task carries: the recording section, and the null model over gRPC."""
        return {
            **PROGRAM_CONFIG,
            "detection": {
                "model": f"grpc://127.0.0.1:{self.model_port}",
                "threshold": DETECTION_THRESHOLD,
            },
        }

    def launch(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        port: int,
        timeout_s: float = START_TIMEOUT_S,
    ) -> subprocess.Popen:
        """Start a process and wait until its health service says SERVING. Each gets a session
        of its own, so a Ctrl-C reaches only the harness, which then stops them in order
        (recorders first, storage last) and none is left retrying calls to one already gone."""
        log_file = open(self.work / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(
            [sys.executable, *argv],
            env={**os.environ, **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = proc
        deadline = time.monotonic() + timeout_s
        while not check(f"127.0.0.1:{port}", timeout_s=1.0)[0]:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; see {self.work}/logs/{name}.log")
            time.sleep(0.2)
        return proc

    def start(self, service: str, timeout_s: float = START_TIMEOUT_S) -> subprocess.Popen:
        env, port = self.environments()[service], self.health_port(service)
        return self.launch(service, ["-m", f"acoustack_{service}"], env, port, timeout_s)

    def extra_recorder(self, index: int) -> tuple[dict[str, str], int]:
        """Another microphone: its own source id, health port, data and temporary folders."""
        port = free_port()
        env = {
            **self.environments()["recorder"],
            "RECORDER_SOURCE_ID": f"mic-{index}",
            "RECORDER_HEALTH_PORT": str(port),
            "RECORDER_DATA_DIR": str(self.work / f"data-{index}"),
            "ACOUSTACK_TEMP_DIR": str(self.temp_dir / f"mic-{index}"),
            "ACOUSTACK_TEMP_FALLBACK_DIR": str(self.temp_dir / f"mic-{index}"),
        }
        return env, port

    @property
    def recorder_names(self) -> list[str]:
        return ["recorder", *(f"recorder-{i}" for i in range(1, self.recorders))]

    def up(self) -> None:
        self.prepare()
        model = str(Path(__file__).with_name("null_model.py"))
        self.launch("model", [model, "--port", str(self.model_port)], {}, self.model_port)
        self.start("storage")
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(STORED_AT_COLUMN)  # storage has migrated by now: it is SERVING
        self.start("detector")
        self.start("recorder")
        for index in range(1, self.recorders):
            env, port = self.extra_recorder(index)
            self.launch(f"recorder-{index}", ["-m", "acoustack_recorder"], env, port)

    def down(self) -> None:
        for service in (*self.recorder_names, "detector", "storage", "model"):
            started = time.monotonic()
            self.stop(service)
            log(f"{service} stopped in {time.monotonic() - started:.1f} s")


def make_stack(temp_dir: Path) -> BenchStack:
    ports = Ports(
        storage=free_port(), detector=free_port(), recorder=free_port(), scheduler=free_port()
    )
    return BenchStack(
        WORK,
        name=NAME,
        ports=ports,
        model_port=free_port(),
        temp_dir=temp_dir,
        recorders=RECORDERS,
    )


# --- feeding the recording queue ---------------------------------------------------------------


class Feeder:
    def __init__(self, broker_url: str) -> None:
        self.app = create_app(broker_url)
        self.connection = self.app.connection_for_write()
        self.channel = self.connection.default_channel
        for queue in (Queue.RECORDING, Queue.DETECTION):
            self.app.amqp.queues[queue.value].bind(self.channel).declare()
        # One producer for the run (with the app's publisher confirms), not one per task.
        self.producer = self.app.producer_pool.acquire(block=True)
        self.kwargs: dict = {}
        self.sent = 0

    def depth(self, queue: Queue) -> int:
        return self.channel.queue_declare(queue=queue.value, passive=True).message_count

    def send(self, kwargs: dict | None = None) -> None:
        self.app.send_task(
            Task.RECORD.value,
            kwargs=self.kwargs if kwargs is None else kwargs,
            producer=self.producer,
        )
        self.sent += 1

    def feed_until(self, deadline: float) -> None:
        """Top the recording queue up until ``deadline`` (time.time()), within the rate bound."""
        limit = self.sent + int(MAX_RATE_PER_S * max(0.0, deadline - time.time()))
        while time.time() < deadline and self.sent < limit:
            depth = self.depth(Queue.RECORDING)
            if depth < QUEUE_LOW:
                for _ in range(min(QUEUE_HIGH - depth, limit - self.sent)):
                    self.send()
            time.sleep(FEED_POLL_S)

    def close(self) -> None:
        self.producer.release()
        self.connection.release()


def count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def run_pipeline(stack: BenchStack) -> tuple[Window, str]:
    stack.up()
    with StoreClient(f"127.0.0.1:{stack.ports.storage}") as store:
        deployment = convert.deployment_from_proto(store.start_deployment("bench", 52.2, 0.12))
    feeder = Feeder(stack.broker_url)
    try:
        # What the scheduler's beat sends with each slot.
        feeder.kwargs = RecordArguments(
            program_config=stack.task_program_config(), **record_arguments(deployment)
        ).as_kwargs()
        mode = "program configuration and deployment with each task, as the beat sends them"
        feeder.send()
        if not wait_for(lambda: count(stack.database_url, "recordings") > 0, PROBE_TIMEOUT_S):
            raise RuntimeError(f"no record task made a recording; see {WORK}/logs/recorder.log")
        if not wait_for(lambda: count(stack.database_url, "model_outputs") > 0, PROBE_TIMEOUT_S):
            raise RuntimeError(f"no model output was stored; see {WORK}/logs/detector.log")

        def backends() -> list[int]:
            # Asked at each snapshot: storage's pool may open connections during the window.
            with psycopg.connect(stack.database_url) as conn:
                return [
                    row[0]
                    for row in conn.execute(
                        "SELECT pid FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()",
                        (stack.name,),
                    )
                ]

        def pid(*names: str) -> Callable[[], list[int]]:
            return lambda: [stack.processes[name].pid for name in names]

        watch = CpuWatch(
            {
                "storage": pid("storage"),
                f"detector ({DETECTOR_CONCURRENCY} workers)": pid("detector"),
                f"recorder ({stack.recorders})": pid(*stack.recorder_names),
                "null model": pid("model"),
                "harness (feeding)": lambda: [os.getpid()],
                f"postgres (backends of {stack.name})": backends,
                "rabbitmq (beam.smp, shared)": lambda: pids_named("beam.smp"),
            },
            alone=frozenset({"harness (feeding)"}),
        )
        warm_end = time.time() + WARMUP_S
        feeder.feed_until(warm_end)
        detection_before = feeder.depth(Queue.DETECTION)
        watch.start()
        window_end = warm_end + SECONDS
        feeder.feed_until(window_end)
        watch.stop()
        detection_after = feeder.depth(Queue.DETECTION)
    finally:
        feeder.close()
    for name, proc in stack.processes.items():
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited ({proc.returncode}) during the run; see {WORK}/logs")
    window = measure_window(stack.database_url, warm_end, window_end)
    watch.report("pipeline", window.count)
    log(
        f"queues: recording kept {QUEUE_LOW}–{QUEUE_HIGH} deep; detection {detection_before} at "
        f"the window's start, {detection_after} at its end; {feeder.sent} record tasks sent"
    )
    if detection_after > detection_before + QUEUE_HIGH:
        log("  detection fell behind the recorders: the latency includes that growing backlog")
    return window, mode


# --- the reference: the same steps in one process, as a monolith ------------------------------


def run_reference(name: str, temp_dir: Path) -> Window:
    """Synthesize, write the WAV, insert the recording, run the null model, clean, build the
    message, insert the output with it: storage's repository called directly, no queues, no RPC."""
    recreate_database(name)
    url = database_url(name)
    store = PostgresStore.open(url, min_size=1, max_size=1)
    try:
        with store.connection() as conn:
            apply_migrations(conn)
            conn.execute(STORED_AT_COLUMN)
        deployment = store.start_deployment(
            schema.Deployment(name="bench-reference", latitude=52.2, longitude=0.12)
        )
        source = SyntheticSource(SAMPLERATE_HZ, CHANNELS, real_time=False)
        cleaner = ThresholdDetectionCleaner(DETECTION_THRESHOLD)
        builder = FullModelOutputMessageBuilder()
        with store.connection() as conn:  # the pool's one connection: the same backend throughout
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        watch = CpuWatch(
            {
                "reference process": lambda: [os.getpid()],
                "postgres (its backend)": lambda: [backend],
            },
            alone=frozenset({"reference process"}),
        )
        start = time.time()
        window_start, end = start + WARMUP_S, start + WARMUP_S + REFERENCE_SECONDS
        for _ in range(int(MAX_RATE_PER_S * (WARMUP_S + REFERENCE_SECONDS))):
            now = time.time()
            if now >= end:
                break
            if watch.before is None and now >= window_start:
                watch.start()
            started_at = dt.datetime.now(dt.UTC)
            samples = source.record(DURATION_S)
            guano = GuanoFields(
                timestamp=started_at,
                capture_samplerate_hz=SAMPLERATE_HZ,
                time_expansion=1.0,
                length_s=len(samples) / SAMPLERATE_HZ,
                make="bench",
                model="bench",
                serial="bench",
                firmware="bench",
                deployment=deployment.name,
                deployment_id=deployment.id,
                device_id="bench",
                source_id="mic-0",
                recording_id=uuid.uuid4(),
            )
            path = write_recording(temp_dir, samples, guano)
            # As the recorder does; created_at is now, with the WAV on disk.
            recording = recording_from_guano(path, guano.as_lines(), samples.channels)
            store.store_recording(recording)
            output = cleaner.clean(convert.model_output_from_proto(null_output(str(recording.id))))
            messages = [m for m in (builder.build_message(output),) if m is not None]
            document = convert.model_output_to_proto(output)
            store.store_model_output(
                document, messages, tag_confidences=check_model_output(document)
            )
        watch.stop()
    finally:
        store.close()
    window = measure_window(url, window_start, end)
    watch.report("reference", window.count)
    return window


# --- main --------------------------------------------------------------------------------------


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Cleanup that a second Ctrl-C cannot cut short (make and uv each pass one on; every step is
    bounded: DevStack.stop kills what does not stop in time). An interrupt that comes meanwhile
    takes effect once the cleanup is done."""
    interrupted: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda signum, _frame: interrupted.append(signum))
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if interrupted:
        raise KeyboardInterrupt


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """RAM-backed like the recorder's default temporary area, when the machine has /dev/shm."""
    parent = "/dev/shm" if os.path.isdir("/dev/shm") else None
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def only_run() -> Iterator[None]:
    """The database and vhost names are fixed: a second run would drop the first one's."""
    WORK.mkdir(parents=True, exist_ok=True)
    with open(WORK / "run.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"another pipeline benchmark is running ({WORK}/run.lock)") from None
        yield


def main() -> int:
    # SIGTERM ends the run like Ctrl-C: through the finally blocks that stop the services.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with only_run():
        return run()


def run() -> int:
    log(
        f"pipeline: synthetic {DURATION_S:g} s mono recordings at {SAMPLERATE_HZ} Hz (as fast as "
        f"the source goes), {RECORDERS} recorder(s), null model over gRPC, "
        f"{DETECTOR_CONCURRENCY} detection workers; "
        f"warm-up {WARMUP_S:g} s, window {SECONDS:g} s; database and vhost {NAME}; logs in "
        f"{WORK}/logs"
    )
    reference_name = f"{NAME}_reference"
    with scratch_dir("acoustack_bench-") as temp_dir:
        stack = make_stack(temp_dir / "pipeline")
        try:
            ours, mode = run_pipeline(stack)
        finally:
            with shielded():
                stack.down()
                drop_database(stack.name)
                rabbitmqctl("delete_vhost", stack.name, must_succeed=False)
        log(
            f"pipeline: {ours.count} outputs stored in {ours.seconds:.0f} s (recording settings "
            f"from {mode}); WAV written → output stored p50 {ours.p50_ms:.1f} ms, "
            f"p95 {ours.p95_ms:.1f} ms, max {ours.max_ms:.1f} ms "
            f"({ours.from_mtime} of {ours.count} from the file's mtime)"
        )
        log(f"reference: one process, the same steps, {REFERENCE_SECONDS:g} s after the warm-up")
        try:
            reference = run_reference(reference_name, temp_dir / "reference")
        finally:
            with shielded():
                drop_database(reference_name)
        log(
            f"reference: {reference.count} outputs stored in {reference.seconds:.0f} s; "
            f"WAV written → output stored p50 {reference.p50_ms:.2f} ms, "
            f"p95 {reference.p95_ms:.2f} ms"
        )
    ratio = ours.per_s / reference.per_s
    print(
        f"pipeline_recordings_per_s: {ours.per_s:.1f} /s "
        f"(reference {reference.per_s:.1f} /s, ratio {ratio:.2f} x)"
    )
    print(f"pipeline_latency_p95: {ours.p95_ms:.1f} ms")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted: services stopped, scratch databases dropped")
        sys.exit(130)
