"""The dashboard against a real storage service (acoustack_storage.testing) on real Postgres, with
a bundled bat recording filed in a recordings folder and its detections stored, and a small HTTP
client that keeps cookies the way a browser does (Secure ones included, on the loopback)."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from acoustack import schema
from acoustack.clients import RetryPolicy, StoreClient
from acoustack.grpc_server import start_server
from acoustack.testing import factories
from acoustack_dashboard.settings import DashboardSettings
from acoustack_dashboard.testing import PASSWORD, Client
from acoustack_dashboard.wiring import Dashboard
from acoustack_scheduler.programs import load_program
from acoustack_scheduler.servicer import register
from acoustack_scheduler.settings import SchedulerSettings
from acoustack_scheduler.wiring import Scheduler, read_program_config
from acoustack_storage.events import EventPublisher
from acoustack_storage.repository import PostgresStore
from acoustack_storage.servicer import StoreServicer
from acoustack_storage.servicer import register as register_store

REPO = Path(__file__).resolve().parents[3]
AUDIO = REPO / "services" / "detector" / "tests" / "data" / "audio"


@pytest.fixture
def store_client(request) -> Iterator[StoreClient]:
    """A client of the storage the dashboard uses (the eventing one when the test has it)."""
    storage = (
        "eventing_storage_target" if "eventing_storage_target" in request.fixturenames
        else "storage_target"
    )  # fmt: skip
    target = request.getfixturevalue(storage)
    with StoreClient(target, retry=RetryPolicy(budget_s=1.0)) as client:
        yield client


@pytest.fixture
def recordings_root(tmp_path: Path) -> Path:
    root = tmp_path / "recordings"
    root.mkdir()
    return root


@dataclass
class Filed:
    recording: schema.Recording
    output: schema.ModelOutput
    path: Path


@pytest.fixture
def filed_recording(store_client: StoreClient, recordings_root: Path) -> Filed:
    """A bundled bat recording (Myotis mystacinus, 0.5 s, 500 kHz capture) saved under the
    recordings root, with one model output of two boxed detections."""
    source = AUDIO / "20170701_213954-MYOMYS-LR_0_0.5.wav"
    folder = recordings_root / "2017-07-01"
    folder.mkdir()
    path = folder / source.name
    shutil.copy(source, path)
    deployment = store_client.start_deployment("meadow", 52.2, 0.12)
    recording = factories.recording(
        deployment.id,
        path=str(path),
        started_at=dt.datetime(2017, 7, 1, 21, 39, 54, tzinfo=dt.UTC),
        duration_s=0.5,
        capture_samplerate_hz=500_000,
        status=schema.RecordingStatus.SAVED,
    )
    store_client.store_recording(recording)
    detections = [
        schema.Detection(
            box=schema.BoundingBox(
                start_time_s=0.1, end_time_s=0.11, low_freq_hz=30_000, high_freq_hz=90_000
            ),
            detection_score=0.9,
            tags=[
                schema.PredictedTag(
                    tag=schema.Tag(key="species", value="Myotis mystacinus"), confidence=0.8
                )
            ],
        ),
        schema.Detection(
            box=schema.BoundingBox(
                start_time_s=0.3, end_time_s=0.31, low_freq_hz=35_000, high_freq_hz=80_000
            ),
            detection_score=0.6,
            tags=[
                schema.PredictedTag(
                    tag=schema.Tag(key="species", value="Pipistrellus pipistrellus"),
                    confidence=0.4,
                )
            ],
        ),
    ]
    output = schema.ModelOutput(
        recording_id=recording.id, model_name="batdetect2", detections=detections
    )
    store_client.store_model_output(output)
    return Filed(recording, output, path)


@pytest.fixture
def control_target(storage_target: str, rabbitmq, tmp_path: Path) -> Iterator[str]:
    """The real scheduler's Control API (the detection program) on a loopback port, over this
    test's storage and the test vhost; its beat is not started, so nothing is recorded."""
    settings = SchedulerSettings(
        broker_url=rabbitmq.url,
        storage_target=storage_target,
        config_file=tmp_path / "program.json",
        disk_path=tmp_path,
    )
    program = load_program(settings.program)
    scheduler = Scheduler(settings, program, read_program_config(settings, program))
    running = start_server([register(scheduler.servicer())], address="127.0.0.1:0")
    yield f"127.0.0.1:{running.port}"
    running.stop(0)
    scheduler.store.close()


@pytest.fixture
def control_target_or_none(request) -> str:
    """The scheduler when the test asks for one (``control_target``), else an address nothing
    answers on (its pages then say the scheduler is unavailable)."""
    if "control_target" in request.fixturenames:
        return request.getfixturevalue("control_target")
    return "127.0.0.1:9"


@pytest.fixture
def eventing_storage_target(database_url: str, rabbitmq) -> Iterator[str]:
    """A real storage service publishing its domain events on the test vhost."""
    store = PostgresStore.open(database_url, timeout_s=2.0)
    store.events = EventPublisher(rabbitmq.url)
    running = start_server([register_store(StoreServicer(store))], address="127.0.0.1:0")
    yield f"127.0.0.1:{running.port}"
    running.stop(0)
    store.events.close()
    store.close()


@pytest.fixture
def broker_url_or_none(request) -> str:
    """The test vhost when the test follows events (``eventing_storage_target``), else none."""
    if "eventing_storage_target" in request.fixturenames:
        return request.getfixturevalue("rabbitmq").url
    return ""


@pytest.fixture
def dashboard(
    request,
    control_target_or_none: str,
    broker_url_or_none: str,
    recordings_root: Path,
    tmp_path: Path,
) -> Iterator[Dashboard]:
    storage = (
        "eventing_storage_target" if "eventing_storage_target" in request.fixturenames
        else "storage_target"
    )  # fmt: skip
    settings = DashboardSettings(
        broker_url=broker_url_or_none,
        storage_target=request.getfixturevalue(storage),
        control_target=control_target_or_none,
        recordings_root=recordings_root,
        data_dir=tmp_path / "dashboard-data",
        password=PASSWORD,
        http_host="127.0.0.1",
        http_port=0,
    )
    running = Dashboard(settings).start()
    yield running
    running.stop()


@pytest.fixture
def web(dashboard: Dashboard) -> Client:
    return Client(dashboard.server.port)
