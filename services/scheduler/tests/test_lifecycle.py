"""The deployment lifecycle against a real storage service and Postgres."""

from __future__ import annotations

import pytest

from acoustack.clients import StoreClient
from acoustack.errors import FailedPreconditionError, InvalidArgumentError
from acoustack_scheduler.lifecycle import CheckResult, Flusher, FlushReport, Lifecycle


@pytest.fixture
def store(storage_target):
    with StoreClient(storage_target) as client:
        yield client


def test_start_status_stop(store):
    announced = []
    flushed = []

    class RecordingFlusher(Flusher):
        def flush(self, deployment, timeout_s):
            flushed.append((deployment.name, timeout_s))
            return FlushReport(steps=["detection drained", "files managed", "outbox sent"])

    lifecycle = Lifecycle(
        store,
        checks=lambda: [CheckResult("recorder", True, "test recording: 3.0 s at 384 kHz")],
        flusher=RecordingFlusher(),
        announce=lambda event, d: announced.append((event, d.name)),
    )
    started, checks = lifecycle.start("meadow", 52.2, 0.12)
    assert (started.name, started.latitude, started.longitude) == ("meadow", 52.2, 0.12)
    assert [c.component for c in checks] == ["recorder"]
    assert lifecycle.current().id == started.id
    with pytest.raises(FailedPreconditionError, match="deployment 'meadow' is active since"):
        lifecycle.start("hedge", 51.0, -1.0)
    ended, report = lifecycle.stop(timeout_s=30)
    assert ended.id == started.id and ended.ended_at is not None
    assert report.complete and flushed == [("meadow", 30)]
    assert announced == [("deployment.started", "meadow"), ("deployment.ended", "meadow")]
    assert lifecycle.current() is None
    with pytest.raises(FailedPreconditionError, match="no deployment is active"):
        lifecycle.stop()


def test_a_failing_check_starts_nothing(store):
    lifecycle = Lifecycle(
        store,
        checks=lambda: [
            CheckResult("recorder", True, "ok"),
            CheckResult("messenger mqtt", False, "127.0.0.1:1884 refused the connection"),
        ],
    )
    with pytest.raises(
        FailedPreconditionError,
        match="checks failed, nothing started: messenger mqtt: 127.0.0.1:1884 refused",
    ):
        lifecycle.start("meadow", 52.2, 0.12)
    assert lifecycle.current() is None
    started, checks = lifecycle.start("meadow", 52.2, 0.12, run_checks=False)
    assert checks == [] and started.name == "meadow"


def test_a_start_that_cannot_be_announced_is_rolled_back(store):
    def broken(event, deployment):
        raise ConnectionError("RabbitMQ refused the connection")

    lifecycle = Lifecycle(store, announce=broken)
    with pytest.raises(
        FailedPreconditionError, match="could not be announced .*the start was rolled back"
    ):
        lifecycle.start("meadow", 52.2, 0.12)
    assert lifecycle.current() is None


def test_bad_coordinates_are_refused_by_name_before_anything_runs(store):
    ran = []
    lifecycle = Lifecycle(store, checks=lambda: ran.append("checks") or [])
    with pytest.raises(
        InvalidArgumentError, match="^latitude: Input should be less than or equal to 90"
    ):
        lifecycle.start("meadow", 95.0, 0.0)
    assert ran == [] and lifecycle.current() is None


def test_recording_pauses_while_a_deployment_stops(store):
    events = []

    class Recorder(Flusher):
        def flush(self, deployment, timeout_s):
            events.append("flush")
            return FlushReport()

    lifecycle = Lifecycle(
        store,
        flusher=Recorder(),
        pause_recording=lambda: events.append("pause"),
        resume_recording=lambda: events.append("resume"),
        announce=lambda event, d: events.append(event),
    )
    lifecycle.start("meadow", 52.2, 0.12)
    lifecycle.stop()
    assert events == ["deployment.started", "pause", "flush", "resume", "deployment.ended"]
