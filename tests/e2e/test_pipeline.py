"""The whole pipeline as local processes on real servers: storage (and file management), detector
(bundled BatDetect2), recorder (replay), messenger (to the local Mosquitto) and scheduler (detection
program, fast slots). The checks pass before the deployment; a setting changed mid-run applies to
the next recordings; the detector is killed mid-run and restarted: no recording is lost, no output
is stored twice, what is stored equals what `acoustack detect` finds in the same files, the files
are filed by date, and every outbox message reaches the MQTT broker."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from acoustack import cli
from acoustack.clients import StoreClient
from acoustack.testing.servers import free_port
from acoustack.v1 import types_pb2 as pb
from acoustack_devstack import MQTT_HOST, DevStack, Ports


@pytest.fixture
def stack(tmp_path):
    stack = DevStack(
        tmp_path,
        name=f"acoustack_e2e_{secrets.token_hex(4)}",
        ports=Ports(free_port(), free_port(), free_port(), free_port(), free_port()),
        # Every recording kept, so each can be compared with the CLI's run on its file (the
        # detection program's default keeps only those its saving filters accept).
        program_config={
            "recording": {"duration_s": 1.0, "interval_s": 2.0},
            "file_management": {"save_all": True},
        },
    )
    with stack.throwaway():
        yield stack


def wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def recordings(store) -> list:
    return store.list_recordings(
        statuses=[pb.RECORDING_STATUS_TEMPORARY, pb.RECORDING_STATUS_SAVED],
        include_model_outputs=True,
        limit=1000,
    )


@pytest.fixture
def mqtt_messages(stack):
    """What arrives on the stack's MQTT topic (the remote server's side)."""
    received: list[dict] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{stack.name}-listener")
    client.on_message = lambda _c, _u, message: received.append(json.loads(message.payload))
    client.connect(MQTT_HOST, 1883)
    client.subscribe(f"{stack.name}/messages", qos=1)
    client.loop_start()
    try:
        yield received
    finally:
        client.loop_stop()
        client.disconnect()


def test_the_detection_program_end_to_end_through_a_detector_crash(stack, mqtt_messages, capsys):
    control = f"127.0.0.1:{stack.ports.scheduler}"
    assert cli.main(["check", "--control", control]) == 0
    verdicts = capsys.readouterr().out
    for component in ("recorder: test recording", "detector: model", "messenger: mqtt"):
        assert component in verdicts, verdicts
    assert (
        cli.main(
            [
                "deployment",
                "start",
                "--name",
                "e2e",
                "--latitude",
                "52.2",
                "--longitude",
                "0.12",
                "--control",
                control,
            ]
        )
        == 0
    )
    assert "detector: model: ok" in capsys.readouterr().out
    with StoreClient(f"127.0.0.1:{stack.ports.storage}") as store:
        wait_for(
            lambda: sum(1 for e in recordings(store) if e.model_outputs) >= 3,
            60,
            "three detected recordings",
        )
        # A change of setting reaches the recorder with the next slot, without a restart.
        set_at = time.time()
        assert (
            cli.main(
                ["config", "set", "--field", "recording.duration_s", "1.5", "--control", control]
            )
            == 0
        )
        wait_for(
            lambda: any(
                e.recording.duration_s == 1.5 and e.recording.started_at.seconds > set_at
                for e in recordings(store)
            ),
            30,
            "a recording with the new duration",
        )
        stack.stop("detector", kill=True)  # a crash, mid-run: no warm shutdown
        before_restart = len(recordings(store))
        wait_for(
            lambda: len(recordings(store)) >= before_restart + 2,
            30,
            "recordings while the detector is down",
        )
        stack.start("detector")
        assert cli.main(["deployment", "stop", "--flush-timeout", "60", "--control", control]) == 0
        stopped = capsys.readouterr().out
        assert "detection: done" in stopped
        assert "file management: done" in stopped
        assert "messaging: done" in stopped, stopped
        entries = recordings(store)
        assert len(entries) >= 5
        # Nothing lost, nothing twice: every recording has exactly one output.
        assert [len(e.model_outputs) for e in entries] == [1] * len(entries)
        # What the pipeline stored is what the CLI finds in the same files (the cleaner's 0.2).
        for entry in entries[:3]:
            assert cli.main(["detect", entry.recording.path, "--threshold", "0.2", "--json"]) == 0
            expected = json.loads(capsys.readouterr().out)["detections"]
            stored = entry.model_outputs[0].detections
            assert len(stored) == len(expected)
            starts = sorted(round(d.box.start_time_s, 4) for d in stored)
            assert starts == sorted(d["start_time"] for d in expected)
            for d in stored:  # the cleaner also drops species tags below 0.2: compare those kept
                start_s = round(d.box.start_time_s, 4)
                classes = {e["class"] for e in expected if e["start_time"] == start_s}
                assert all(tag.tag.value in classes for tag in d.tags)
        # File management filed each recording by date, and the store knows where.
        saved = [e.recording for e in entries if e.recording.status == pb.RECORDING_STATUS_SAVED]
        assert len(saved) == len(entries)
        for recording in saved:
            day = recording.started_at.ToDatetime()
            assert Path(recording.path).parent == stack.work / "recordings" / f"{day:%Y/%m/%d}"
            assert Path(recording.path).is_file()
        # Every output's message left the outbox and reached the broker (at least once).
        assert store.get_unsent_messages(limit=1000) == []
        delivered = wait_for(
            lambda: (
                {m.get("recording_id") for m in mqtt_messages} >= {e.recording.id for e in entries}
            ),
            30,
            "the messages on the MQTT topic",
        )
        assert delivered
        assert cli.main(["status", "--control", control]) == 0
        assert "last message sent: 20" in capsys.readouterr().out
