"""The recorder against a real storage service and Postgres, writing real files; the microphone is
faked at the PyAudio boundary only (test_sources.FakePyAudio's twin here)."""

from __future__ import annotations

import datetime as dt
import time
import wave

import numpy as np
import pytest

from acoustack import convert, schema
from acoustack.clients import RetryPolicy, StoreClient
from acoustack.errors import UnavailableError
from acoustack.testing.proxy import TcpProxy
from acoustack.v1 import types_pb2 as pb
from acoustack_recorder.conditions import AllOf, DailyWindow, DailyWindows, FreeDiskSpace
from acoustack_recorder.recorder import DeviceInfo, Health, Outcome, Recorder, temporary_area
from acoustack_recorder.registration import Registrar
from acoustack_recorder.sources import MicrophoneSource, SyntheticSource
from acoustack_recorder.wavfile import read_guano

DEVICE = DeviceInfo("pi-10000000abcdef01", make="Dodotronic", model="UltraMic 384K", firmware="0.1")


class LosableMic:
    """A PyAudio stand-in whose only input device can be unplugged."""

    def __init__(self):
        self.plugged = True
        module = self

        class Stream:
            def read(self, frames, exception_on_overflow=True):
                if not module.plugged:
                    raise OSError(-9996, "Invalid input device")
                return np.zeros(frames, "<i2").tobytes()

            def stop_stream(self):
                pass

            def close(self):
                pass

        class PyAudio:
            def get_device_count(self):
                return 1 if module.plugged else 0

            def get_device_info_by_index(self, index):
                return {
                    "name": "UltraMic 384K",
                    "maxInputChannels": 1,
                    "defaultSampleRate": 384000.0,
                }

            def is_format_supported(self, rate, **kwargs):
                return True

            def open(self, **kwargs):
                if not module.plugged:
                    raise OSError(-9996, "Invalid input device")
                return Stream()

            def terminate(self):
                pass

        self.PyAudio = PyAudio


@pytest.fixture
def store(storage_target):
    with StoreClient(storage_target, retry=RetryPolicy(budget_s=0.5)) as client:
        yield client


@pytest.fixture
def deployment(store):
    return store.start_deployment("meadow", 52.2053, 0.1218)


def make_recorder(store, tmp_path, **overrides) -> Recorder:
    handed = []
    values = dict(
        store=store,
        source=SyntheticSource(384_000, seed=1),
        temp_dir=tmp_path / "tmp",
        device=DEVICE,
        source_id="mic-0",
        duration_s=0.5,
        hand_to_detection=lambda recording, program_config: handed.append(recording),
    )
    values.update(overrides)
    recorder = Recorder(**values)
    recorder.temp_dir.mkdir(parents=True, exist_ok=True)
    recorder.handed = handed
    return recorder


def test_a_slot_is_recorded_registered_and_handed_to_detection(store, deployment, tmp_path):
    recorder = make_recorder(store, tmp_path, time_expansion=10.0)
    result = recorder.record_slot()
    assert result.outcome is Outcome.RECORDED
    assert [r.id for r in recorder.handed] == [result.recording_id]
    assert recorder.handed[0].path == str(result.path)  # the detector needs no lookup
    stored = store.get_recording(result.recording_id).recording
    assert stored.path == str(result.path)
    assert stored.deployment_id == deployment.id
    assert (stored.device_id, stored.source_id) == (DEVICE.device_id, "mic-0")
    assert (stored.capture_samplerate_hz, stored.time_expansion) == (384_000, 10.0)
    assert stored.duration_s == pytest.approx(0.5)
    assert stored.status == pb.RECORDING_STATUS_TEMPORARY
    with wave.open(str(result.path), "rb") as wav:
        assert wav.getframerate() == 38_400  # time-expanded header
    guano = read_guano(result.path)
    assert guano["Loc Position"] == "52.205300 0.121800"
    assert guano["Serial"] == DEVICE.device_id
    assert recorder.health.last_success_at is not None


def test_two_slots_in_the_same_second_make_two_files(store, deployment, tmp_path):
    fixed = dt.datetime(2026, 6, 1, 22, 0, tzinfo=dt.UTC)
    recorder = make_recorder(store, tmp_path, clock=lambda: fixed)
    first, second = recorder.record_slot(), recorder.record_slot()
    assert first.path != second.path
    assert len(list(recorder.temp_dir.glob("*.wav"))) == 2


def test_without_a_deployment_or_outside_the_window_nothing_is_recorded(store, tmp_path):
    recorder = make_recorder(store, tmp_path)
    assert recorder.record_slot().reason == "no active deployment (start one first)"
    store.start_deployment("meadow", 52.2, 0.12)
    noon = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
    night_only = make_recorder(
        store, tmp_path,
        conditions=AllOf([DailyWindows([DailyWindow(dt.time(20), dt.time(6))], "Europe/London")]),
        clock=lambda: noon,
    )  # fmt: skip
    result = night_only.record_slot()
    assert (result.outcome, result.reason) == (
        Outcome.SKIPPED,
        "13:00 is outside 20:00–06:00 Europe/London",
    )
    full_disk = make_recorder(store, tmp_path, conditions=FreeDiskSpace(tmp_path, 10**18))
    assert full_disk.record_slot().reason.startswith("free disk")
    assert list((tmp_path / "tmp").glob("*.wav")) == []


def test_a_lost_microphone_is_recorded_as_failed_backed_off_and_turns_health_red(
    store, deployment, tmp_path
):
    mic = LosableMic()
    now = [dt.datetime(2026, 6, 1, 22, 0, tzinfo=dt.UTC)]
    recorder = make_recorder(
        store, tmp_path,
        source=MicrophoneSource("UltraMic", 384_000, pyaudio_module=mic),
        health=Health(failure_threshold=2),
        clock=lambda: now[0],
    )  # fmt: skip
    assert recorder.record_slot().outcome is Outcome.RECORDED
    mic.plugged = False
    failed = recorder.record_slot()
    assert failed.outcome is Outcome.FAILED
    assert "Invalid input device" in failed.reason
    stored = store.get_recording(failed.recording_id).recording
    assert stored.status == pb.RECORDING_STATUS_FAILED
    assert "Invalid input device" in stored.failure_reason
    assert recorder.health.healthy  # one failure: not yet
    # Until the backoff pause ends the device is not tried again.
    assert recorder.record_slot().reason.startswith("device retry paused until")
    now[0] += dt.timedelta(seconds=2)
    assert recorder.record_slot().outcome is Outcome.FAILED
    assert not recorder.health.healthy
    assert recorder.health.last_failure_reason.startswith("no input device matches")
    mic.plugged = True
    now[0] += dt.timedelta(minutes=10)
    assert recorder.record_slot().outcome is Outcome.RECORDED
    assert recorder.health.healthy and recorder.health.consecutive_failures == 0
    failures = store.list_recordings(statuses=[pb.RECORDING_STATUS_FAILED])
    assert len(failures) == 2


def test_storage_down_keeps_the_file_and_reconcile_registers_it(storage_target, tmp_path):
    host, port = storage_target.rsplit(":", 1)
    proxy = TcpProxy(host, int(port))
    try:
        with StoreClient(f"127.0.0.1:{proxy.port}", retry=RetryPolicy(budget_s=0.3)) as store:
            store.start_deployment("meadow", 52.2, 0.12)
            recorder = make_recorder(store, tmp_path)
            assert recorder.record_slot().outcome is Outcome.RECORDED
            proxy.cut()
            kept = (
                recorder.record_slot()
            )  # the deployment is remembered; the device keeps recording
            assert kept.outcome is Outcome.RECORDED_UNREGISTERED
            assert kept.path.exists()
            proxy.restore()
            wait_until_reachable(store)
            # The next slot that reaches storage registers what waited, without a restart.
            assert recorder.record_slot().outcome is Outcome.RECORDED
            assert store.get_recording(kept.recording_id).recording.path == str(kept.path)
            assert kept.recording_id in [r.id for r in recorder.handed]
            assert recorder.reconcile() == {
                "registered": 0, "known": 3, "quarantined": 0
            }  # fmt: skip
    finally:
        proxy.close()


def test_the_deployment_sent_with_the_task_needs_no_storage_even_after_a_restart(
    storage_target, tmp_path
):
    """A recorder that restarts during a storage outage knows no deployment of its own; the one
    the scheduler sends with each slot keeps it recording, and the file waits to be registered."""
    host, port = storage_target.rsplit(":", 1)
    proxy = TcpProxy(host, int(port))
    try:
        with StoreClient(f"127.0.0.1:{proxy.port}", retry=RetryPolicy(budget_s=0.3)) as store:
            started = convert.deployment_from_proto(store.start_deployment("meadow", 52.2, 0.12))
            proxy.cut()
            fresh = make_recorder(store, tmp_path)  # as after a restart: nothing remembered
            with pytest.raises(UnavailableError):
                fresh.record_slot()  # asking storage: there is no one to ask
            kept = fresh.record_slot(started)
            assert kept.outcome is Outcome.RECORDED_UNREGISTERED
            assert read_guano(kept.path)["acoustack|Deployment ID"] == str(started.id)
            proxy.restore()
            wait_until_reachable(store)
            assert fresh.record_slot(started).outcome is Outcome.RECORDED
            assert store.get_recording(kept.recording_id).recording.deployment_id == str(started.id)
            # The scheduler says there is none (the deployment ended): nothing is recorded.
            assert fresh.record_slot(None).reason == "no active deployment (start one first)"
    finally:
        proxy.close()


def wait_until_reachable(store, timeout_s=15.0):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            store.current_deployment()
            return
        except UnavailableError:
            assert time.monotonic() < deadline, "storage did not come back"
            time.sleep(0.1)


def test_start_cleans_partials_and_quarantines_what_it_cannot_register(store, deployment, tmp_path):
    recorder = make_recorder(store, tmp_path)
    (recorder.temp_dir / ".20260601T220000.000Z_mic-0_abc.wav.partial").write_bytes(b"RIFF")
    (recorder.temp_dir / "stranger.wav").write_bytes(b"RIFF\0\0\0\0WAVE")
    recorder.start()
    quarantine = tmp_path / "quarantine"
    assert (quarantine / "stranger.wav").exists()
    assert "unreadable metadata" in (quarantine / "stranger.wav.why.txt").read_text()
    assert list(recorder.temp_dir.iterdir()) == []


def test_start_fails_recordings_whose_temporary_file_was_lost(store, deployment, tmp_path):
    """A power cut empties a RAM-backed temporary area: what was registered but not yet filed
    is gone, and must not stay temporary for good."""
    recorder = make_recorder(store, tmp_path)
    lost, kept = recorder.record_slot(), recorder.record_slot()
    filed = recorder.record_slot()
    saved_to = tmp_path / "kept.wav"
    store.update_recording_path(filed.recording_id, str(saved_to), schema.RecordingStatus.SAVED)
    filed.path.unlink()  # filed: moved on, the store updated first
    lost.path.unlink()  # the power cut
    other_source = make_recorder(store, tmp_path, source_id="mic-1", temp_dir=tmp_path / "tmp1")
    elsewhere = other_source.record_slot()
    elsewhere.path.unlink()  # another recorder's business: it settles its own at its start

    restarted = make_recorder(store, tmp_path)
    restarted.start()

    def status(result):
        return store.get_recording(result.recording_id).recording

    assert status(lost).status == pb.RECORDING_STATUS_FAILED
    assert "vanished from the temporary area" in status(lost).failure_reason
    assert status(kept).status == pb.RECORDING_STATUS_TEMPORARY
    assert kept.path.exists()
    assert status(filed).status == pb.RECORDING_STATUS_SAVED
    assert status(elsewhere).status == pb.RECORDING_STATUS_TEMPORARY


def test_a_catch_up_while_recording_leaves_the_slot_being_written_alone(
    store, deployment, tmp_path
):
    """The registrar's catch-up runs beside the recording thread: a partial file then is a
    slot under way, and deleting it would lose that recording."""
    recorder = make_recorder(store, tmp_path)
    recorder.start()
    under_way = recorder.temp_dir / ".20260601T220000.000Z_mic-0_abc.wav.partial"
    under_way.write_bytes(b"RIFF")
    recorder.reconcile()
    assert under_way.exists()


def test_the_temporary_area_falls_back_when_ram_storage_is_missing(tmp_path):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the RAM disk should be")
    assert temporary_area(blocked / "tmp", tmp_path / "disk") == tmp_path / "disk"
    assert temporary_area(tmp_path / "ram", tmp_path / "disk") == tmp_path / "ram"


def test_health_saved_by_the_worker_is_read_back_by_the_health_service(tmp_path):
    state = tmp_path / "health.json"
    assert Health.read(state, failure_threshold=2).healthy  # nothing saved yet: a fresh start
    health = Health(failure_threshold=2, state_file=state)
    at = dt.datetime(2026, 11, 22, 21, 0, tzinfo=dt.UTC)
    health.failed(at, "device unplugged", max_backoff_s=60)
    health.failed(at, "device unplugged", max_backoff_s=60)
    seen = Health.read(state, failure_threshold=2)
    assert not seen.healthy
    assert seen.last_failure_reason == "device unplugged"
    assert seen.retry_not_before == at + dt.timedelta(seconds=2)
    health.succeeded(at)
    assert Health.read(state, failure_threshold=2).healthy


def test_a_replacement_recorder_that_records_well_clears_the_health_it_inherited(
    store, deployment, tmp_path
):
    """A pool child killed while the device failed leaves NOT_SERVING saved; the child that
    replaces it starts from that state (as the service builds it), so its first good slot turns
    health back to SERVING instead of leaving the old verdict on file."""
    state = tmp_path / "health.json"
    killed = Health(failure_threshold=2, state_file=state)
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    killed.failed(at, "device hung", max_backoff_s=60)
    killed.failed(at, "device hung", max_backoff_s=60)
    assert not Health.read(state, failure_threshold=2).healthy
    replacement = make_recorder(store, tmp_path, health=Health.read(state, failure_threshold=2))
    assert replacement.record_slot().outcome is Outcome.RECORDED
    assert Health.read(state, failure_threshold=2).healthy


def test_with_a_registrar_slots_go_on_through_a_storage_outage_and_register_in_order(
    storage_target, tmp_path
):
    """Registration runs off the recording path: while storage is down, every slot is recorded
    on time and waits on disk; once storage is back they are registered and handed to
    detection in the order they were recorded."""
    host, port = storage_target.rsplit(":", 1)
    proxy = TcpProxy(host, int(port))
    try:
        with StoreClient(f"127.0.0.1:{proxy.port}", retry=RetryPolicy(budget_s=0.3)) as store:
            meadow = convert.deployment_from_proto(store.start_deployment("meadow", 52.2, 0.12))
            recorder = make_recorder(store, tmp_path)
            recorder.registrar = Registrar(initial_backoff_s=0.05, max_backoff_s=0.2)
            recorder.start()
            proxy.cut()
            slots = [recorder.record_slot(meadow) for _ in range(3)]
            assert [s.outcome for s in slots] == [Outcome.RECORDED] * 3
            assert recorder.registrar.pending >= 3  # waiting, not lost, not blocking
            assert recorder.handed == []
            proxy.restore()
            assert recorder.registrar.drain(30) == 0
            assert [r.id for r in recorder.handed] == [s.recording_id for s in slots]
            for slot in slots:
                assert store.get_recording(slot.recording_id).recording.path == str(slot.path)
            recorder.registrar.close()
    finally:
        proxy.close()


def test_a_registration_storage_refuses_is_set_aside_with_the_reason(store, tmp_path):
    recorder = make_recorder(store, tmp_path)
    recorder.registrar = Registrar(initial_backoff_s=0.05)
    unknown = schema.Deployment(name="never started")  # storage has no such deployment
    slot = recorder.record_slot(unknown)
    assert slot.outcome is Outcome.RECORDED
    assert recorder.registrar.drain(30) == 0
    why = (tmp_path / "quarantine" / f"{slot.path.name}.why.txt").read_text()
    assert "storage refused it" in why and "deployment" in why
    assert not slot.path.exists()
    assert recorder.handed == []
    recorder.registrar.close()


def test_when_the_queue_overflows_reconcile_registers_the_rest(storage_target, tmp_path):
    host, port = storage_target.rsplit(":", 1)
    proxy = TcpProxy(host, int(port))
    try:
        with StoreClient(f"127.0.0.1:{proxy.port}", retry=RetryPolicy(budget_s=0.3)) as store:
            meadow = convert.deployment_from_proto(store.start_deployment("meadow", 52.2, 0.12))
            recorder = make_recorder(store, tmp_path)
            proxy.cut()
            # A start during the outage: the leftover check waits its turn instead of failing.
            recorder.registrar = Registrar(
                catch_up=recorder.reconcile, max_pending=2, initial_backoff_s=0.05,
                max_backoff_s=0.2,
            )  # fmt: skip
            recorder.start()
            slots = [recorder.record_slot(meadow) for _ in range(5)]
            assert all(s.path.exists() for s in slots)
            proxy.restore()
            wait_until_reachable(store)
            deadline = time.monotonic() + 30
            while len(store.list_recordings()) < 5:
                assert time.monotonic() < deadline, "the dropped registrations were not caught up"
                time.sleep(0.1)
            assert recorder.registrar.drain(30) == 0
            assert {r.recording.id for r in store.list_recordings()} == {
                str(s.recording_id) for s in slots
            }
            assert {r.id for r in recorder.handed} >= {s.recording_id for s in slots}
            recorder.registrar.close()
    finally:
        proxy.close()
