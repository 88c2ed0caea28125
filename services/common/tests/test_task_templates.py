"""The six task templates with recording fakes: the order of calls, and what a failure leaves."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

import pytest

from acoustack import convert, schema, tasks
from acoustack.clients import StoreClient
from acoustack.testing import factories


class Calls(list):
    def record(self, name, *args):
        self.append(name)
        return args


class Spy:
    """A component that logs each call in the shared list and does what it is told."""

    def __init__(self, calls: Calls, label: str, **behaviour):
        self._calls, self._label, self._behaviour = calls, label, behaviour

    def __getattr__(self, method):
        def call(*args, **kwargs):
            self._calls.record(f"{self._label}.{method}", *args)
            action = self._behaviour.get(method)
            if isinstance(action, BaseException):
                raise action
            return action(*args) if callable(action) else action

        return call


DEPLOYMENT = schema.Deployment(name="meadow", latitude=52.2, longitude=0.12)


def test_recording_task_calls_in_order_and_stops_at_a_no():
    calls = Calls()
    recording = factories.recording(DEPLOYMENT.id)
    task = tasks.generate_recording_task(
        recorder=Spy(calls, "recorder", record=recording),
        store=Spy(calls, "store", get_current_deployment=DEPLOYMENT, store_recording=None),
        recording_conditions=[Spy(calls, "condition", should_record=True)],
    )
    assert task() == recording
    assert calls == [
        "condition.should_record",
        "store.get_current_deployment",
        "recorder.record",
        "store.store_recording",
    ]
    calls.clear()
    refused = tasks.generate_recording_task(
        Spy(calls, "recorder"),
        Spy(calls, "store"),
        recording_conditions=[Spy(calls, "condition", should_record=False)],
    )
    assert refused() is None
    assert calls == ["condition.should_record"]


def test_a_failed_registration_is_logged_with_the_recording_and_the_next_run_goes_on(caplog):
    calls = Calls()
    recording = factories.recording(DEPLOYMENT.id)
    store = Spy(
        calls,
        "store",
        get_current_deployment=DEPLOYMENT,
        store_recording=ConnectionError("storage down"),
    )
    task = tasks.generate_recording_task(Spy(calls, "recorder", record=recording), store)
    with caplog.at_level(logging.ERROR), pytest.raises(ConnectionError):
        task()
    assert f"recording {recording.id} at {recording.path} was made but not stored" in caplog.text
    store._behaviour["store_recording"] = None
    assert task() == recording


class RealOutbox:
    """The templates' MessageStore over the real storage service: the outbox rule (a message stays
    unsent until a send succeeds) is storage's, not this test's. ``fail_on``: the n-th
    store_message raises, as a connection lost mid-run would."""

    def __init__(self, store: StoreClient, fail_on: int | None = None):
        self.store = store
        self.fail_on = fail_on
        self.stores = 0

    def store_message(self, message):
        self.stores += 1
        if self.fail_on is not None and self.stores == self.fail_on:
            raise ConnectionError("outbox down")
        self.store.store_message(message)

    def get_unsent_messages(self):
        return [convert.message_from_proto(m) for m in self.store.get_unsent_messages(100)]

    def store_response(self, response):
        self.store.store_response(response)

    def responses(self):
        return [convert.response_from_proto(r) for r in self.store.list_responses(limit=100)]


@pytest.fixture
def store(storage_target):
    with StoreClient(storage_target) as client:
        yield client


class Builder:
    def __init__(self, label):
        self.label = label

    def build_message(self, output):
        return schema.Message(
            content=json.dumps({"builder": self.label, "detections": len(output.detections)})
        )


def test_detection_task_calls_in_order():
    calls = Calls()
    recording = factories.recording(DEPLOYMENT.id)
    output = factories.model_output(recording.id)
    stored: list[schema.Message] = []
    task = tasks.generate_detection_task(
        store=Spy(calls, "store", store_model_output=None),
        model=Spy(calls, "model", run=output),
        message_store=Spy(calls, "message_store", store_message=stored.append),
        output_cleaners=[Spy(calls, "cleaner", clean=lambda o: o)],
        processing_filters=[Spy(calls, "filter", should_process_recording=True)],
        message_factories=[Spy(calls, "factory", build_message=Builder("a").build_message)],
    )
    assert task(recording) == output
    assert calls == [
        "filter.should_process_recording", "model.run", "cleaner.clean",
        "store.store_model_output", "factory.build_message", "message_store.store_message",
    ]  # fmt: skip


def test_a_detection_run_cut_short_is_completed_by_the_next_without_duplicates(caplog, store):
    deployment = convert.deployment_from_proto(store.start_deployment("meadow", 52.2, 0.12))
    recording = factories.recording(deployment.id)
    store.store_recording(recording)
    outbox = RealOutbox(store, fail_on=2)  # the second message of the first run fails
    stored_outputs = []

    class Model:
        name = "batdetect2"

        def run(self, rec):  # a new output object every run, as a real model makes
            return factories.model_output(rec.id, seed=len(stored_outputs))

    class Store:
        def store_model_output(self, output):
            stored_outputs.append(output)

    task = tasks.generate_detection_task(
        Store(), Model(), outbox, message_factories=[Builder("a"), Builder("b"), Builder("c")]
    )
    with caplog.at_level(logging.ERROR), pytest.raises(ConnectionError):
        task(recording)
    assert f"output of batdetect2 for recording {recording.id} not fully stored" in caplog.text
    assert len(outbox.get_unsent_messages()) == 1
    task(recording)
    builders = sorted(json.loads(m.content)["builder"] for m in outbox.get_unsent_messages())
    assert builders == ["a", "b", "c"]  # the ids are derived: the first is not stored twice


def test_file_management_moves_saves_and_deletes_in_order(tmp_path):
    calls = Calls()
    temp = tmp_path / "tmp"
    temp.mkdir()
    keep = factories.recording(DEPLOYMENT.id, path=str(temp / "keep.wav"))
    drop = factories.recording(DEPLOYMENT.id, path=str(temp / "drop.wav"))
    waiting = factories.recording(DEPLOYMENT.id, path=str(temp / "waiting.wav"))
    for r in (keep, drop, waiting):
        Path(r.path).write_bytes(b"RIFF audio")
    outputs = {
        keep.id: [factories.model_output(keep.id)],
        drop.id: [factories.model_output(drop.id)],
        waiting.id: [],
    }
    store = Spy(
        calls, "store",
        get_recordings_by_path=lambda paths: [(r, outputs[r.id]) for r in (keep, drop, waiting)],
        update_recording_path=None, mark_recording_deleted=None,
    )  # fmt: skip
    task = tasks.generate_file_management_task(
        store=store,
        file_managers=[
            Spy(
                calls, "manager", save_recording=lambda r, o: tmp_path / "saved" / Path(r.path).name
            )
        ],
        file_filters=[Spy(calls, "filter", should_save_recording=lambda r, o: r.id == keep.id)],
        required_models=["batdetect2"],
        tmp_path=temp,
    )
    task()
    assert calls == [
        "store.get_recordings_by_path",
        "filter.should_save_recording", "manager.save_recording", "store.update_recording_path",
        "filter.should_save_recording", "store.mark_recording_deleted",
    ]  # fmt: skip
    assert (tmp_path / "saved" / "keep.wav").read_bytes() == b"RIFF audio"
    assert sorted(p.name for p in temp.iterdir()) == ["waiting.wav"]  # still waiting for its model


def cached_bytes(path: Path) -> int:
    """How much of a file is in the page cache (util-linux's fincore)."""
    done = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--raw", "--output", "RES", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(done.stdout)


def test_a_saved_recording_is_on_disk_and_out_of_the_page_cache(tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    recording = factories.recording(DEPLOYMENT.id, path=str(temp / "a.wav"))
    audio = os.urandom(2 * 1024 * 1024)
    Path(recording.path).write_bytes(audio)
    saved = tmp_path / "saved" / "a.wav"
    calls = Calls()
    tasks.generate_file_management_task(
        store=Spy(calls, "store", get_recordings_by_path=[(recording, [])],
                  update_recording_path=None),
        file_managers=[Spy(calls, "manager", save_recording=saved)],
        tmp_path=temp,
    )()  # fmt: skip
    filesystem = subprocess.run(
        ["stat", "-f", "-c", "%T", str(tmp_path)], capture_output=True, text=True, check=True
    ).stdout.strip()
    if filesystem != "tmpfs":  # a RAM-backed file has no disk to be dropped to
        assert cached_bytes(saved) == 0
    assert saved.read_bytes() == audio


def test_a_failed_store_update_leaves_the_recording_where_it_was(tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    recording = factories.recording(DEPLOYMENT.id, path=str(temp / "a.wav"))
    Path(recording.path).write_bytes(b"RIFF")
    calls = Calls()
    task = tasks.generate_file_management_task(
        store=Spy(
            calls,
            "store",
            get_recordings_by_path=[(recording, [])],
            update_recording_path=ConnectionError("down"),
        ),
        file_managers=[Spy(calls, "manager", save_recording=tmp_path / "saved" / "a.wav")],
        tmp_path=temp,
    )
    with pytest.raises(ConnectionError):
        task()
    assert Path(recording.path).exists()
    assert not (tmp_path / "saved" / "a.wav").exists()


def test_messaging_sends_each_message_and_keeps_every_response(store):
    outbox = RealOutbox(store)
    first, second = schema.Message(content="1"), schema.Message(content="2")
    outbox.store_message(first)
    outbox.store_message(second)

    class Flaky:
        def send_message(self, message):
            if message.content == "2":
                raise TimeoutError("broker did not answer")
            return schema.Response(message_id=message.id, status=schema.ResponseStatus.SUCCESS)

    tasks.generate_send_messages_task(outbox, [Flaky()])()
    responses = {r.message_id: r for r in outbox.responses()}
    assert responses[first.id].status is schema.ResponseStatus.SUCCESS
    assert responses[second.id].status is schema.ResponseStatus.ERROR
    assert responses[second.id].content == "TimeoutError: broker did not answer"
    # Storage keeps the failed one unsent: the next run tries it again, and only it.
    assert [m.id for m in outbox.get_unsent_messages()] == [second.id]


def test_summary_task_stores_what_the_summarisers_build():
    calls = Calls()
    summary = schema.Message(content="{}")
    stored: list[schema.Message] = []
    tasks.generate_summariser_task(
        [Spy(calls, "summariser", build_summary=summary), Spy(calls, "quiet", build_summary=None)],
        Spy(calls, "outbox", store_message=stored.append),
    )()
    assert calls == ["summariser.build_summary", "outbox.store_message", "quiet.build_summary"]
    assert stored == [summary]


def test_heartbeat_evaluates_metrics_when_sent_and_says_when_nobody_heard(caplog):
    sent = []

    class Messenger:
        def __init__(self, status):
            self.status = status

        def send_message(self, message):
            sent.append(json.loads(message.content))
            return schema.Response(message_id=message.id, status=self.status)

    def free_disk():
        return schema.Metric(name="free_disk", value=12.5, unit="GB")

    def broken():
        raise OSError("no sensor")

    verdicts = iter(["ok", "degraded: no recording for 10 min"])
    task = tasks.generate_heartbeat_task(
        [Messenger(schema.ResponseStatus.SUCCESS)],
        metrics=[free_disk, broken],
        device_id=lambda: "pi-10000000abcdef01",
        status=lambda: next(verdicts),
    )
    task()
    task()
    assert sent[0]["metrics"] == [{"name": "free_disk", "value": 12.5, "unit": "GB"}]
    # The id and the verdict are the builder's, asked at each run.
    assert [(h["device_id"], h["status"]) for h in sent] == [
        ("pi-10000000abcdef01", "ok"),
        ("pi-10000000abcdef01", "degraded: no recording for 10 min"),
    ]
    with pytest.raises(RuntimeError, match="heartbeat not delivered by any of 1 messenger"):
        tasks.generate_heartbeat_task([Messenger(schema.ResponseStatus.ERROR)])()
