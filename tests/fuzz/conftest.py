"""The servers the fuzz suite runs, each real and on a loopback port: storage over a scratch
database; the detector's server (Model over the bundled BatDetect2, SelfCheck, health) as
acoustack_detector.wiring.serve_grpc puts it together; the messenger's (SelfCheck, health); the scheduler's
Control over its own storage, a RabbitMQ vhost and a configuration file of its own. (The recorder's
server, SelfCheck making a test recording, is the same SelfCheckServicer; it is not run here.)

Run settings come from the environment (``make fuzz`` sets them for a long run):
ACOUSTACK_FUZZ_SEED, ACOUSTACK_FUZZ_CALLS and ACOUSTACK_FUZZ_SECONDS (per server; the defaults are
the short run of ``make test``), ACOUSTACK_FUZZ_CALL_BOUND_S (the slowest call allowed).
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import sys
import tempfile
import uuid
import wave
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest

_SPEC = importlib.util.spec_from_file_location(
    "acoustack_fuzzer", Path(__file__).with_name("fuzzer.py")
)
fuzzer = importlib.util.module_from_spec(_SPEC)
sys.modules["acoustack_fuzzer"] = fuzzer  # dataclasses look their module up while it loads
_SPEC.loader.exec_module(fuzzer)

REPO = Path(__file__).resolve().parents[2]
MYOTIS = REPO / "services/detector/tests/data/audio/20170701_213954-MYOMYS-LR_0_0.5.wav"
MODEL_DIR = Path(os.environ.get("ACOUSTACK_MODEL_DIR") or REPO / "build" / "model")
SUMMARIES: list[str] = []


@dataclass(frozen=True)
class FuzzSettings:
    seed: int
    calls: int | None  # None: each server's own short-run count
    seconds: float
    call_bound_s: float

    def calls_for(self, short_run: int) -> int:
        return self.calls if self.calls is not None else short_run


@pytest.fixture(scope="session")
def fuzz_settings() -> FuzzSettings:
    calls = os.environ.get("ACOUSTACK_FUZZ_CALLS")
    return FuzzSettings(
        seed=int(os.environ.get("ACOUSTACK_FUZZ_SEED", "1616")),
        calls=int(calls) if calls else None,
        seconds=float(os.environ.get("ACOUSTACK_FUZZ_SECONDS", "12")),
        call_bound_s=float(os.environ.get("ACOUSTACK_FUZZ_CALL_BOUND_S", "5")),
    )


@pytest.fixture
def run_fuzz(fuzz_settings):
    """Fuzz a target with the run's settings; the summary line goes to the terminal report."""

    def run(target, short_run: int):
        report = fuzzer.fuzz(
            target,
            seed=fuzz_settings.seed,
            calls=fuzz_settings.calls_for(short_run),
            seconds=fuzz_settings.seconds,
            call_bound_s=fuzz_settings.call_bound_s,
        )
        SUMMARIES.append(report.summary())
        print(report.summary())
        if os.environ.get("ACOUSTACK_FUZZ_VERBOSE"):
            print(f"  slowest: {report.slowest}")
            for (method, code), n in sorted(report.method_codes.items()):
                print(f"  {method} {code} {n}: {report.examples[(method, code)]!r}")
        return report

    return run


def pytest_terminal_summary(terminalreporter):
    if SUMMARIES:
        terminalreporter.section("fuzz")
        for line in SUMMARIES:
            terminalreporter.write_line(line)


def fresh_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# --- storage ------------------------------------------------------------------------------


def store_seeds(client) -> dict[str, list]:
    """A valid request for every Store RPC, over a little stored state."""
    import datetime as dt

    from acoustack import convert, schema
    from acoustack.testing import factories
    from acoustack.v1 import store_pb2 as spb
    from acoustack.v1 import types_pb2 as pb

    t0 = dt.datetime(2026, 6, 1, 21, 0, tzinfo=dt.UTC)
    ts = convert.timestamp
    deployment = client.start_deployment("meadow", 52.2, 0.12, started_at=t0)
    recording = factories.recording(deployment.id, started_at=t0)
    client.store_recording(recording)
    client.store_model_output(factories.model_output(recording.id, n_detections=3))
    message = schema.Message(content='{"species": "Myotis"}')
    client.store_message(message)
    client.store_response(
        schema.Response(message_id=message.id, status=schema.ResponseStatus.FAILED, content="500")
    )

    def new_recording(rng):
        rid = fresh_uuid(rng)
        r = factories.recording(deployment.id, id=rid, path=f"/rec/{rid}.wav", started_at=t0)
        return spb.StoreRecordingRequest(recording=convert.recording_to_proto(r))

    def new_output(rng):
        output = factories.model_output(
            recording.id, n_detections=2, model_name=f"model-{rng.randrange(10**9)}"
        )
        note = schema.Message(content='{"detections": 2}')
        return spb.StoreModelOutputRequest(
            model_output=convert.model_output_to_proto(output),
            messages=[convert.message_to_proto(note)],
        )

    name = spb.DESCRIPTOR.services_by_name["Store"].full_name
    seeds = {
        "StartDeployment": [
            lambda rng: spb.StartDeploymentRequest(
                id=fresh_uuid(rng), name="hedge", latitude=51.0, longitude=-1.0, started_at=ts(t0)
            )
        ],
        "EndDeployment": [
            spb.EndDeploymentRequest(
                deployment_id=str(deployment.id), ended_at=ts(t0 + dt.timedelta(days=1))
            )
        ],
        "GetDevice": [spb.GetDeviceRequest()],
        "GetRetention": [spb.GetRetentionRequest(), spb.GetRetentionRequest(window_s=3600)],
        "GetCurrentDeployment": [spb.GetCurrentDeploymentRequest()],
        "GetDeployment": [spb.GetDeploymentRequest(deployment_id=str(deployment.id))],
        "StoreRecording": [new_recording],
        "GetRecording": [
            spb.GetRecordingRequest(recording_id=str(recording.id), include_model_outputs=True)
        ],
        "GetRecordingsByPath": [
            spb.GetRecordingsByPathRequest(paths=[recording.path, "/rec/none.wav"])
        ],
        "ListRecordings": [
            spb.ListRecordingsRequest(
                deployment_id=str(deployment.id),
                statuses=[pb.RECORDING_STATUS_TEMPORARY, pb.RECORDING_STATUS_SAVED],
                started_from=ts(t0 - dt.timedelta(hours=1)),
                started_to=ts(t0 + dt.timedelta(hours=1)),
                include_model_outputs=True,
                limit=50,
                order=spb.SORT_ORDER_NEWEST_FIRST,
            )
        ],
        "UpdateRecordingPath": [
            lambda rng: spb.UpdateRecordingPathRequest(
                recording_id=str(recording.id),
                path=f"/data/{fresh_uuid(rng)}.wav",
                status=pb.RECORDING_STATUS_SAVED,
            )
        ],
        "MarkRecordingFailed": [
            spb.MarkRecordingFailedRequest(
                recording_id=str(recording.id),
                reason="its file vanished",
                only_if_status=pb.RECORDING_STATUS_TEMPORARY,
            )
        ],
        "MarkRecordingDeleted": [spb.MarkRecordingDeletedRequest(recording_id=str(recording.id))],
        "StoreModelOutput": [new_output],
        "ListDetections": [
            spb.ListDetectionsRequest(
                started_from=ts(t0 - dt.timedelta(hours=1)),
                started_to=ts(t0 + dt.timedelta(hours=1)),
                model_name="batdetect2",
                min_score=0.1,
                max_score=0.9,
                tag_key="species",
                tag_value="Myotis mystacinus",
                deployment_id=str(deployment.id),
                limit=100,
            )
        ],
        "CountDetections": [
            spb.CountDetectionsRequest(
                started_from=ts(t0 - dt.timedelta(days=1)),
                started_to=ts(t0 + dt.timedelta(days=1)),
                bucket=spb.TIME_BUCKET_HOUR,
                tag_key="species",
                time_zone="Europe/London",
                deployment_id=str(deployment.id),
                model_name="batdetect2",
            ),
            spb.CountDetectionsRequest(
                started_from=ts(t0 - dt.timedelta(days=28)),
                started_to=ts(t0 + dt.timedelta(days=1)),
                bucket=spb.TIME_BUCKET_DAY,
            ),
        ],
        "GetRetentionPlan": [
            spb.GetRetentionPlanRequest(
                file_management_json='{"retention_days": 30, "keep_best_per_species": 2}', limit=5
            ),
            spb.GetRetentionPlanRequest(),
        ],
        "StoreMessage": [
            lambda rng: spb.StoreMessageRequest(
                message=convert.message_to_proto(
                    schema.Message(id=fresh_uuid(rng), content='{"n": 1}', priority=1)
                )
            )
        ],
        "GetUnsentMessages": [
            spb.GetUnsentMessagesRequest(limit=10, order=spb.SORT_ORDER_NEWEST_FIRST)
        ],
        "StoreResponse": [
            spb.StoreResponseRequest(
                response=convert.response_to_proto(
                    schema.Response(
                        message_id=message.id, status=schema.ResponseStatus.ERROR, content="down"
                    )
                )
            ),
            spb.StoreResponseRequest(
                response=convert.response_to_proto(
                    schema.Response(
                        message_id=message.id, status=schema.ResponseStatus.FAILED, content="400"
                    )
                ),
                outcome=spb.TryOutcome(refused=True, retry_in_s=0, dead_after_refusals=1),
            ),
        ],
        "ListResponses": [
            spb.ListResponsesRequest(message_id=str(message.id), status=pb.RESPONSE_STATUS_FAILED),
            spb.ListResponsesRequest(limit=5),
        ],
        "StoreResponses": [
            spb.StoreResponsesRequest(
                responses=[
                    spb.StoreResponseRequest(
                        response=convert.response_to_proto(
                            schema.Response(
                                message_id=message.id, status=schema.ResponseStatus.TIMEOUT
                            )
                        ),
                        outcome=spb.TryOutcome(retry_in_s=5, dead_after_refusals=3),
                    )
                ]
            )
        ],
        "CountMessages": [spb.CountMessagesRequest()],
        "ListMessages": [
            spb.ListMessagesRequest(state=pb.MESSAGE_STATE_DEAD, limit=10),
            spb.ListMessagesRequest(order=spb.SORT_ORDER_NEWEST_FIRST),
        ],
        "RetryMessages": [
            spb.RetryMessagesRequest(message_ids=[str(message.id)]),
            spb.RetryMessagesRequest(all_dead=True),
        ],
    }
    return {f"{name}.{method}": requests for method, requests in seeds.items()}


def store_readback(database_url: str, target: str):
    """Every stored record, read back with valid requests: what a fuzz run must leave readable."""

    def readback() -> list[str]:
        from acoustack.clients import RetryPolicy, StoreClient

        problems: list[str] = []
        with psycopg.connect(database_url) as conn:
            recordings = [r[0] for r in conn.execute("SELECT id FROM recordings").fetchall()]
            deployments = [r[0] for r in conn.execute("SELECT id FROM deployments").fetchall()]
            # Due now (GetUnsentMessages gives only those: a message backing off waits for its
            # time), and the most that can be due by the time the call is answered.
            due, waiting = conn.execute(
                """SELECT count(*) FILTER (WHERE next_attempt_at IS NULL OR next_attempt_at <= now()),
                          count(*)
                   FROM messages WHERE sent_at IS NULL AND dead_at IS NULL"""
            ).fetchone()
            responses = conn.execute(
                "SELECT message_id, count(*) FROM responses GROUP BY message_id"
            ).fetchall()
            outputs = conn.execute("SELECT count(*) FROM model_outputs").fetchone()[0]
        with StoreClient(target, retry=RetryPolicy(budget_s=2), call_timeout_s=30) as client:

            def attempt(what: str, call):
                try:
                    return call()
                except Exception as exc:
                    problems.append(f"{what}: {type(exc).__name__}: {str(exc)[:300]}")
                    return None

            for rid in recordings:
                attempt(
                    f"GetRecording {rid}",
                    lambda rid=rid: client.get_recording(rid, include_model_outputs=True),
                )
            for did in deployments:
                attempt(f"GetDeployment {did}", lambda did=did: client.get_deployment(did))
            attempt("GetCurrentDeployment", client.current_deployment)
            attempt("GetDevice", client.device_id)
            listed = attempt(
                "ListRecordings",
                lambda: client.list_recordings(limit=10_000, include_model_outputs=True),
            )
            if listed is not None and len(listed) != min(len(recordings), 10_000):
                problems.append(f"ListRecordings returned {len(listed)} of {len(recordings)}")
            elif listed is not None:
                shown = sum(len(e.model_outputs) for e in listed)
                if shown != outputs:
                    problems.append(f"ListRecordings showed {shown} of {outputs} model outputs")
            messages = attempt("GetUnsentMessages", lambda: client.get_unsent_messages(10_000))
            if messages is not None and not (
                min(due, 10_000) <= len(messages) <= min(waiting, 10_000)
            ):
                problems.append(
                    f"GetUnsentMessages returned {len(messages)} of {due} due "
                    f"({waiting} waiting in all)"
                )
            for message_id, count in responses:
                found = attempt(
                    f"ListResponses {message_id}",
                    lambda m=message_id: client.list_responses(m),
                )
                if found is not None and len(found) != count:
                    problems.append(f"ListResponses {message_id}: {len(found)} of {count}")
            attempt("ListDetections", lambda: client.list_detections(limit=10_000))
        return problems

    return readback


@pytest.fixture
def store_fuzz_target(database_url):
    """A factory: a storage server with this servicer class (the real one, or a broken one for
    the fuzzer's own test) over this test's database, as a fuzz target."""
    from acoustack.clients import StoreClient
    from acoustack.grpc_server import start_server
    from acoustack.v1 import store_pb2
    from acoustack_storage.repository import PostgresStore
    from acoustack_storage.retention import Retention, RetentionPolicy
    from acoustack_storage.servicer import register

    servers = []

    def start(servicer_class):
        store = PostgresStore.open(database_url, timeout_s=2.0)
        servicer = servicer_class(store)
        running = start_server([register(servicer)], address="127.0.0.1:0")
        servicer.running = running  # for a servicer that plays with its own health
        servers.append((running, store))
        address = f"127.0.0.1:{running.port}"
        # A retention run (over an empty destination), so GetRetention has one to report.
        with tempfile.TemporaryDirectory() as destination:
            Retention(store, Path(destination), RetentionPolicy(keep_free_mb=1)).run()
        with StoreClient(address) as client:
            seeds = store_seeds(client)
        return fuzzer.Target(
            name=f"storage (acoustack.v1.Store, {servicer_class.__name__})",
            address=address,
            services=[store_pb2.DESCRIPTOR.services_by_name["Store"]],
            seeds=seeds,
            readback=store_readback(database_url, address),
        )

    yield start
    for running, store in servers:
        running.stop(0)
        store.close()


# --- the detector's server: Model, SelfCheck, health ------------------------------------------


@pytest.fixture(scope="session")
def bundled_model():
    if not (MODEL_DIR / "batdetect2.json").is_file():
        pytest.fail(
            f"the exported BatDetect2 model is missing ({MODEL_DIR}): run `make model` first",
            pytrace=False,
        )
    from acoustack_detector.batdetect2.model import BatDetect2Onnx

    return BatDetect2Onnx.load(MODEL_DIR)


@pytest.fixture
def detector_fuzz_target(bundled_model, tmp_path):
    from acoustack import self_check as self_check_service
    from acoustack.grpc_server import start_server
    from acoustack.v1 import check_pb2, model_pb2, types_pb2
    from acoustack_detector import servicer as model_server
    from acoustack_detector.checks import self_check

    root = tmp_path / "recordings"
    root.mkdir()
    recording_path = root / MYOTIS.name
    recording_path.write_bytes(MYOTIS.read_bytes())
    servicer = model_server.ModelServicer(
        bundled_model,
        recordings_root=root,
        max_audio_bytes=2 * 1024 * 1024,
        # A short limit for the run: no request may ask for work that takes long.
        max_audio_s=2.0,
    )
    running = start_server(
        [
            model_server.register(servicer),
            self_check_service.register(
                lambda config: self_check(lambda: bundled_model, recording_path, config)
            ),
        ],
        address="127.0.0.1:0",
    )
    with wave.open(str(MYOTIS), "rb") as wav:
        rate = wav.getframerate()
        pcm = wav.readframes(rate // 10)  # 0.1 s
    header = model_pb2.AudioHeader(samplerate_hz=rate, channels=1, recording_id=str(uuid.uuid4()))
    recording = types_pb2.Recording(
        id=str(uuid.uuid4()), path=str(recording_path), time_expansion=1.0
    )
    model = model_pb2.DESCRIPTOR.services_by_name["Model"]
    check = check_pb2.DESCRIPTOR.services_by_name["SelfCheck"]
    half = len(pcm) // 2 // 2 * 2
    seeds = {
        f"{model.full_name}.Info": [model_pb2.InfoRequest()],
        f"{model.full_name}.Detect": [
            model_pb2.DetectRequest(audio=model_pb2.AudioData(header=header, pcm_s16le=pcm)),
            model_pb2.DetectRequest(recording=recording),
        ],
        f"{model.full_name}.DetectStream": [
            [
                model_pb2.DetectStreamRequest(header=header),
                model_pb2.DetectStreamRequest(pcm_s16le_chunk=pcm[:half]),
                model_pb2.DetectStreamRequest(pcm_s16le_chunk=pcm[half:]),
            ]
        ],
        f"{check.full_name}.Check": [
            check_pb2.CheckRequest(
                program_config_json=json.dumps({"detection": {"model": "batdetect2"}})
            ),
            check_pb2.CheckRequest(),
        ],
    }
    yield fuzzer.Target(
        name="detector (acoustack.v1.Model, acoustack.v1.SelfCheck)",
        address=f"127.0.0.1:{running.port}",
        services=[model, check],
        seeds=seeds,
    )
    running.stop(0)


# --- the messenger's server: SelfCheck, health ------------------------------------------------


@pytest.fixture
def messenger_fuzz_target(tmp_path):
    """The messenger's SelfCheck as its __main__ serves it, checking messengers on loopback only:
    an HTTP receiver of the test's own and the local Mosquitto. (A mutated configuration is not
    JSON, or names the same hosts: a string mutation cannot make a new host name.)"""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from acoustack import self_check as self_check_service
    from acoustack.grpc_server import start_server
    from acoustack.v1 import check_pb2
    from acoustack_messenger.checks import self_check

    class Receiver(BaseHTTPRequestHandler):
        def log_message(self, *_args) -> None:
            pass

        def do_OPTIONS(self) -> None:
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    receiver.daemon_threads = True
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/in"
    running = start_server(
        [self_check_service.register(lambda config: self_check(config, lambda: "fuzz-device"))],
        address="127.0.0.1:0",
        max_workers=4,
    )
    check = check_pb2.DESCRIPTOR.services_by_name["SelfCheck"]
    configs = [
        {"messaging": {"http_url": url}},
        {"messaging": {"mqtt_host": "127.0.0.1", "mqtt_port": 1883, "mqtt_timeout_s": 2}},
        {"messaging": {}},
    ]
    yield fuzzer.Target(
        name="messenger (acoustack.v1.SelfCheck)",
        address=f"127.0.0.1:{running.port}",
        services=[check],
        seeds={
            f"{check.full_name}.Check": [
                check_pb2.CheckRequest(program_config_json=json.dumps(c)) for c in configs
            ]
        },
    )
    running.stop(0)
    receiver.shutdown()
    receiver.server_close()


# --- the scheduler's Control --------------------------------------------------------------


@pytest.fixture
def scheduler_fuzz_target(rabbitmq, storage_target, database_url, tmp_path):
    from acoustack.celery_app import create_app
    from acoustack.clients import StoreClient
    from acoustack.grpc_server import start_server
    from acoustack.names import Queue
    from acoustack.v1 import control_pb2
    from acoustack_scheduler.beat_control import BeatControl
    from acoustack_scheduler.broker import EventAnnouncer, QueueFlusher, queue_stats
    from acoustack_scheduler.config_store import ConfigStore
    from acoustack_scheduler.lifecycle import Lifecycle
    from acoustack_scheduler.programs import DetectionProgram, expected_workers
    from acoustack_scheduler.servicer import MAX_WAIT_S, ControlServicer, register
    from acoustack_scheduler.status import StatusReporter
    from acoustack_scheduler.task_runner import TaskRunner
    from acoustack_scheduler.wiring import sends_anywhere, service_checks

    app = create_app(rabbitmq.url)

    def purge():
        with app.connection_for_write() as connection:
            for queue in Queue:
                app.amqp.queues[queue.value].bind(connection).declare()
                app.amqp.queues[queue.value].bind(connection).purge()

    purge()
    store = StoreClient(storage_target)
    program = DetectionProgram()
    config = program.parse_config({})
    beat = BeatControl(program, config, lambda *change: None)  # no beat runs in this test
    services = {"storage": storage_target}
    holder = SimpleNamespace()
    lifecycle = Lifecycle(
        store,
        checks=service_checks(services, lambda: holder.config_store.get("")),
        flusher=QueueFlusher(
            app,
            store,
            every_recording_detected=True,
            settle_s=0.0,
            send_arguments=lambda task: program.send_arguments(holder.config_store.config, task),
            can_send=lambda: sends_anywhere(holder.config_store.config),
            poll_s=0.05,
        ),
        announce=EventAnnouncer(app),
        pause_recording=lambda: beat.pause("record"),
        resume_recording=lambda: beat.resume("record"),
        on_deployment=beat.set_deployment,
    )
    holder.config_store = ConfigStore(
        program, tmp_path / "program.json", config, on_change=beat.set_config
    )
    status = StatusReporter(
        program.name,
        store,
        services,
        lambda: queue_stats(app),
        disk_path=tmp_path,
        expected_workers=lambda: expected_workers(program.workers(holder.config_store.config)),
        program_config=lambda: holder.config_store.config.model_dump(mode="json"),
    )
    tasks = TaskRunner(app, program, lambda: beat.config, beat.task_arguments)
    running = start_server(
        [register(ControlServicer(lifecycle, status, tasks, holder.config_store))],
        address="127.0.0.1:0",
    )
    control = control_pb2.DESCRIPTOR.services_by_name["Control"]
    name = control.full_name
    seeds = {
        f"{name}.StartDeployment": [
            control_pb2.ControlStartDeploymentRequest(name="meadow", latitude=52.2, longitude=0.1),
            control_pb2.ControlStartDeploymentRequest(name="hedge", skip_checks=True),
        ],
        f"{name}.StopDeployment": [control_pb2.ControlStopDeploymentRequest(flush_timeout_s=0.2)],
        f"{name}.GetStatus": [control_pb2.GetStatusRequest()],
        f"{name}.RunChecks": [control_pb2.RunChecksRequest()],
        f"{name}.ListTasks": [control_pb2.ListTasksRequest()],
        f"{name}.RunTask": [
            control_pb2.RunTaskRequest(name="record"),
            control_pb2.RunTaskRequest(name="acoustack.manage_files"),
            control_pb2.RunTaskRequest(name="record", profile=True, profile_timeout_s=0.2),
        ],
        f"{name}.GetConfig": [
            control_pb2.GetConfigRequest(field="recording.duration_s"),
            control_pb2.GetConfigRequest(),
        ],
        f"{name}.GetOutbox": [control_pb2.GetOutboxRequest(dead_limit=10)],
        f"{name}.RetryMessages": [control_pb2.ControlRetryMessagesRequest(all_dead=True)],
        f"{name}.SetConfig": [
            control_pb2.SetConfigRequest(field="recording.duration_s", value="5"),
            control_pb2.SetConfigRequest(field="detection.threshold", value="0.3"),
        ],
    }
    wait = (0.2, MAX_WAIT_S)
    yield fuzzer.Target(
        name="scheduler (acoustack.v1.Control)",
        address=f"127.0.0.1:{running.port}",
        services=[control],
        seeds=seeds,
        readback=store_readback(database_url, storage_target),
        wait_fields={
            f"{name}.StopDeployment": {"flush_timeout_s": wait},
            f"{name}.RunTask": {"profile_timeout_s": wait},
        },
    )
    running.stop(0)
    store.close()
    purge()
