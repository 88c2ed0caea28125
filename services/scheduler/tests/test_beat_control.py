"""What the beat is told to send: the deployment goes with every record task once it is known, a
paused entry is dropped, and a configuration change keeps both."""

from __future__ import annotations

from acoustack import schema
from acoustack.names import RecordArguments, Task
from acoustack_scheduler.beat_control import BeatControl
from acoustack_scheduler.programs import DetectionProgram


def make_control():
    program = DetectionProgram()
    pushed: list[tuple[dict, set]] = []
    control = BeatControl(program, program.parse_config({}), lambda *change: pushed.append(change))
    return control, pushed


def test_record_tasks_carry_the_deployment_once_it_is_known():
    control, pushed = make_control()
    # Unknown (storage has not answered): record says so and the recorder asks storage.
    assert control.schedule()["record"]["kwargs"]["deployment"] == "ask"
    control.learned_deployment(None)
    assert pushed[-1][0]["record"]["kwargs"]["deployment"] is None
    meadow = schema.Deployment(name="meadow", latitude=52.2, longitude=0.12)
    control.set_deployment(meadow)
    kwargs = pushed[-1][0]["record"]["kwargs"]
    assert RecordArguments.parse((), kwargs).deployment == meadow  # as the recorder reads it
    # Only record needs it; the others carry the configuration alone.
    assert set(pushed[-1][0]["send-messages"]["kwargs"]) == {"program_config"}
    # What storage said at start comes too late once a start has been seen.
    control.learned_deployment(None)
    assert control.schedule()["record"]["kwargs"]["deployment"]["name"] == "meadow"


def test_a_paused_entry_is_dropped_and_comes_back_as_things_are_then():
    control, pushed = make_control()
    meadow = schema.Deployment(name="meadow")
    control.set_deployment(meadow)
    control.pause("record")
    schedule, removed = pushed[-1]
    assert "record" not in schedule and removed == {"record"}
    control.set_deployment(None)  # the deployment ends while recording is paused
    assert "record" not in pushed[-1][0]
    changed = control.config.model_copy(deep=True)
    changed.recording.duration_s = 1.5
    control.set_config(changed)
    assert "record" not in pushed[-1][0]
    control.resume("record")
    schedule, removed = pushed[-1]
    assert removed == set()
    assert schedule["record"]["kwargs"]["deployment"] is None
    assert schedule["record"]["kwargs"]["program_config"]["recording"]["duration_s"] == 1.5
    # `task run record` sends what the beat sends.
    assert control.task_arguments(Task.RECORD) == {"deployment": None}
    assert control.task_arguments(Task.SEND_MESSAGES) == {}
