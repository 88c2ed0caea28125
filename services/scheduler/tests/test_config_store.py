"""config get/set: by dotted field, validated, written atomically, applied."""

from __future__ import annotations

import json

import pytest

from acoustack.errors import InvalidArgumentError
from acoustack_scheduler.config_store import ConfigStore
from acoustack_scheduler.programs import DetectionProgram


@pytest.fixture
def store(tmp_path):
    program = DetectionProgram()
    applied = []
    config_store = ConfigStore(
        program, tmp_path / "program.json", program.parse_config({}), applied.append
    )
    config_store.applied = applied
    return config_store


def test_get_the_whole_configuration_or_a_field(store):
    assert store.get()["recording"]["duration_s"] == 3.0
    assert store.get("heartbeat.interval_s") == 3600.0
    with pytest.raises(
        InvalidArgumentError,
        match="no field 'recording.duraton_s' \\(fields here: channels, daily_windows",
    ):
        store.get("recording.duraton_s")
    with pytest.raises(InvalidArgumentError, match="'recording.duration_s' is not a section"):
        store.get("recording.duration_s.x")


def test_set_validates_writes_and_applies(store, tmp_path):
    assert store.set("recording.interval_s", "20") == 20.0
    assert store.set("recording.timezone", "Europe/London") == "Europe/London"  # plain text
    assert json.loads((tmp_path / "program.json").read_text())["recording"]["interval_s"] == 20.0
    assert [c.recording.interval_s for c in store.applied] == [20.0, 20.0]
    assert not list(tmp_path.glob(".*partial"))


def test_a_bad_value_names_the_field_and_changes_nothing(store, tmp_path):
    with pytest.raises(
        InvalidArgumentError, match="^recording.duration_s: Input should be greater than 0"
    ):
        store.set("recording.duration_s", "-1")
    with pytest.raises(
        InvalidArgumentError, match="record: the offset 15 s must be less than the interval 10 s"
    ):
        store.set("recording.offset_s", "15")
    with pytest.raises(
        InvalidArgumentError, match="^detection.threshold: Input should be a valid number"
    ):
        store.set("detection.threshold", "high")
    assert store.get("recording.duration_s") == 3.0
    assert store.applied == [] and not (tmp_path / "program.json").exists()


def test_several_changes_apply_together_or_not_at_all(store, tmp_path):
    with pytest.raises(InvalidArgumentError, match="^detection.threshold: Input should be"):
        store.set_many([("recording.interval_s", "20"), ("detection.threshold", "high")])
    assert store.get("recording.interval_s") == 10.0, "the valid change was not applied alone"
    assert store.applied == [] and not (tmp_path / "program.json").exists()
    whole = store.set_many([("recording.interval_s", "20"), ("detection.threshold", "0.4")])
    assert whole["recording"]["interval_s"] == 20.0 and whole["detection"]["threshold"] == 0.4
    assert len(store.applied) == 1  # one write, one application


def test_the_schema_gives_every_fields_help(store):
    schema = store.schema()
    recording = schema["$defs"][schema["properties"]["recording"]["$ref"].rsplit("/", 1)[1]]
    assert (
        recording["properties"]["duration_s"]["description"] == "length of each recording, seconds"
    )
