"""Programs: chosen by name or import path, typed configuration, schedule and worker layout."""

from __future__ import annotations

import sys
import types

import pytest

from acoustack.errors import InvalidArgumentError
from acoustack.names import TASK_TIME_LIMITS, Queue, Task
from acoustack_scheduler.programs import (
    BUILT_IN,
    DetectionProgram,
    DetectionProgramConfig,
    Program,
    WorkerSpec,
    load_program,
)
from acoustack_scheduler.schedules import aligned_schedule


def test_defaults_are_acoupis_but_files_are_filed_sooner():
    config = load_program("detection").parse_config({})
    assert (config.recording.duration_s, config.recording.interval_s) == (3.0, 10.0)
    # Filed sooner than acoupi's 120 s: a recording waits in RAM for at most 30 s.
    assert config.file_management.interval_s == 30.0
    assert config.messaging.interval_s == 120.0
    assert config.heartbeat.interval_s == 3600.0
    assert config.detection.threshold == 0.2


def test_every_field_has_help_text():
    def fields(model, prefix=""):
        for name, info in model.model_fields.items():
            yield prefix + name, info
            annotation = info.annotation
            if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
                yield from fields(annotation, f"{prefix}{name}.")

    missing = [name for name, info in fields(DetectionProgramConfig) if not info.description]
    assert missing == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"recording": {"duration_s": 0}}, "recording.duration_s: Input should be greater than 0"),
        ({"recording": {"duratoin_s": 3}}, "recording.duratoin_s: Extra inputs are not permitted"),
        (
            {"messaging": {"max_per_run": "lots"}},
            "messaging.max_per_run: Input should be a valid integer",
        ),
        (
            {"detection": {"threshold": 2}},
            "detection.threshold: Input should be less than or equal to 1",
        ),
        ({"surprise": 1}, "surprise: Extra inputs are not permitted"),
    ],
)
def test_bad_configuration_names_the_dotted_field(data, message):
    with pytest.raises(InvalidArgumentError, match=f"^{message}"):
        load_program("detection").parse_config(data)


def test_a_default_program_has_no_messaging_section():
    with pytest.raises(InvalidArgumentError, match="messaging: Extra inputs are not permitted"):
        load_program("default").parse_config({"messaging": {}})


def test_each_program_schedules_its_tasks_on_aligned_slots():
    assert set(load_program("default").beat_schedule(load_program("default").parse_config({}))) == {
        "record", "manage-files",
    }  # fmt: skip
    program = load_program("detection")
    schedule = program.beat_schedule(
        program.parse_config({"recording": {"interval_s": 10, "offset_s": 5}})
    )
    assert set(schedule) == {"record", "manage-files", "send-messages", "heartbeat", "summarise"}
    assert schedule["record"]["task"] == Task.RECORD.value
    # Each task carries the configuration, so the services apply a change at the next run.
    assert schedule["record"]["kwargs"]["program_config"]["recording"]["offset_s"] == 5
    # A recording may take its duration plus a margin before the pool stops it; soft, then hard.
    assert schedule["record"]["options"]["soft_time_limit"] == 3.0 + 30.0
    assert schedule["record"]["options"]["time_limit"] == 3.0 + 60.0
    # The other tasks' limits are in their contract, which the workers apply.
    assert "time_limit" not in schedule["send-messages"]["options"]
    assert TASK_TIME_LIMITS[Task.SEND_MESSAGES].hard_s == 630.0
    assert schedule["record"]["schedule"] == aligned_schedule(10, 5)
    assert schedule["heartbeat"]["schedule"] == aligned_schedule(3600)
    with pytest.raises(
        InvalidArgumentError, match="record: the offset 12 s must be less than the interval 10 s"
    ):
        program.beat_schedule(program.parse_config({"recording": {"offset_s": 12}}))


def test_the_worker_layout_comes_from_the_program():
    workers = DetectionProgram().workers(DetectionProgram().parse_config({}))
    assert WorkerSpec("recording", (Queue.RECORDING.value,), 1) in workers
    assert any(w.queues == (Queue.DETECTION.value,) for w in workers)
    assert not any(
        Queue.DETECTION.value in w.queues for w in load_program("connected").workers(None)
    )


def test_a_third_party_program_loads_by_import_path(monkeypatch):
    module = types.ModuleType("birdsong_program")

    class Birdsong(DetectionProgram):
        name = "birdsong"

    module.Birdsong = Birdsong
    monkeypatch.setitem(sys.modules, "birdsong_program", module)
    assert isinstance(load_program("birdsong_program:Birdsong"), Birdsong)
    with pytest.raises(
        InvalidArgumentError, match="is not a built-in program \\(default, connected, detection\\)"
    ):
        load_program("birdsong")
    with pytest.raises(InvalidArgumentError, match="cannot import 'no_such_module'"):
        load_program("no_such_module:Thing")
    with pytest.raises(InvalidArgumentError, match="is not a Program subclass"):
        load_program("birdsong_program:nothing")
    assert set(BUILT_IN) == {"default", "connected", "detection"}
    assert issubclass(BUILT_IN["detection"], Program)
