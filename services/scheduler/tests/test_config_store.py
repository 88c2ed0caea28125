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


def test_a_floor_that_would_stop_recording_before_retention_acts_is_refused(store, tmp_path):
    """The shipped defaults keep a card from filling: retention frees space (keep_free_mb) before
    the recorder stops at its own floor; a change that inverts the two is refused, naming both."""
    config = store.get()
    assert config["file_management"]["keep_free_mb"] > config["recording"]["min_free_disk_mb"]
    assert config["file_management"]["keep_best_per_species"] > 0
    assert (
        config["file_management"]["save_all"] is False
    )  # the detection program keeps what it finds
    with pytest.raises(
        InvalidArgumentError,
        match=r"^file_management.keep_free_mb: 1024 MB is not above recording.min_free_disk_mb "
        r"\(2000 MB\), so recording would stop before retention makes room",
    ):
        store.set("recording.min_free_disk_mb", "2000")
    with pytest.raises(InvalidArgumentError, match="^file_management.keep_free_mb: 100 MB"):
        store.set("file_management.keep_free_mb", "100")
    assert store.applied == [] and not (tmp_path / "program.json").exists()
    # Turning the floor off is the user's choice, and then the recorder's own floor is the last word.
    assert store.set("file_management.keep_free_mb", "0") == 0
    assert store.set("recording.min_free_disk_mb", "2000") == 2000


def test_a_password_never_enters_the_configuration_nor_its_errors(store, tmp_path):
    """The configuration is printed (`config get`) and sent with every task: it names a secret
    (messaging.mqtt_password_secret), and a password offered to it is refused unechoed."""
    with pytest.raises(InvalidArgumentError) as refused:
        store.set("messaging.mqtt_password", "hunter2")
    assert "no field 'messaging.mqtt_password'" in str(refused.value)
    assert "mqtt_password_secret" in str(refused.value) and "hunter2" not in str(refused.value)
    assert store.get("messaging.mqtt_password_secret") == "mqtt_password"
    # A configuration kept by an older version, with the password in it: refused at start,
    # saying where the password goes, without printing it.
    with pytest.raises(InvalidArgumentError) as old:
        DetectionProgram().parse_config({"messaging": {"mqtt_password": "hunter2"}})
    assert str(old.value).startswith(
        "messaging: Value error, mqtt_password is no longer a field: a password does not live"
    )
    assert "compose/secrets.env" in str(old.value) and "hunter2" not in str(old.value)
    assert "hunter2" not in json.dumps(store.get())


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
