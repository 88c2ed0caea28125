"""The whole pipeline as local processes on real servers: storage, detector (bundled BatDetect2),
recorder (replay) and scheduler (detection program, fast slots). The detector is killed mid-run
and restarted: no recording is lost, no output is stored twice, and what is stored equals what
`acoustack detect` finds in the same files."""

from __future__ import annotations

import json
import secrets
import subprocess
import time

import psycopg
import pytest

from acoustack import cli
from acoustack.clients import StoreClient
from acoustack.testing.servers import free_port
from acoustack.v1 import types_pb2 as pb
from acoustack_scheduler.devstack import POSTGRES_ADMIN, DevStack, Ports


@pytest.fixture
def stack(tmp_path):
    stack = DevStack(
        tmp_path,
        name=f"acoustack_e2e_{secrets.token_hex(4)}",
        ports=Ports(free_port(), free_port(), free_port(), free_port()),
        program_config={"recording": {"duration_s": 1.0, "interval_s": 2.0}},
    )
    try:
        stack.up()
        yield stack
    finally:
        stack.down()
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{stack.name}" WITH (FORCE)')
        subprocess.run(
            ["rabbitmqctl", "-q", "delete_vhost", stack.name], capture_output=True, check=False
        )


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
        statuses=[pb.RECORDING_STATUS_TEMPORARY], include_model_outputs=True, limit=1000
    )


def test_the_detection_program_end_to_end_through_a_detector_crash(stack, capsys):
    control = f"127.0.0.1:{stack.ports.scheduler}"
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
    assert "detector: ok" in capsys.readouterr().out
    with StoreClient(f"127.0.0.1:{stack.ports.storage}") as store:
        wait_for(
            lambda: sum(1 for e in recordings(store) if e.model_outputs) >= 3,
            60,
            "three detected recordings",
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
        assert "detection: done" in capsys.readouterr().out
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
        assert len(store.get_unsent_messages(limit=1000)) == len(entries)  # one per output
