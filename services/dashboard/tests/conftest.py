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
from acoustack.testing import factories
from acoustack_dashboard.settings import DashboardSettings
from acoustack_dashboard.testing import PASSWORD, Client
from acoustack_dashboard.wiring import Dashboard

REPO = Path(__file__).resolve().parents[3]
AUDIO = REPO / "services" / "detector" / "tests" / "data" / "audio"


@pytest.fixture
def store_client(storage_target: str) -> Iterator[StoreClient]:
    with StoreClient(storage_target, retry=RetryPolicy(budget_s=1.0)) as client:
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
def dashboard(storage_target: str, recordings_root: Path, tmp_path: Path) -> Iterator[Dashboard]:
    settings = DashboardSettings(
        storage_target=storage_target,
        # No scheduler in these tests: the overview says it is unavailable.
        control_target="127.0.0.1:9",
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
