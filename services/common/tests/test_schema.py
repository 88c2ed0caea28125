"""The shared schema: what it accepts, what it refuses (by field), and the proto round trip."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from pydantic import ValidationError

from acoustack import convert, schema
from acoustack.errors import validation_message
from acoustack.testing import factories


def test_naive_times_are_refused_and_others_become_utc():
    with pytest.raises(ValidationError, match="must be time-zone aware"):
        schema.Deployment(name="x", started_at=dt.datetime(2026, 1, 1))
    paris = dt.timezone(dt.timedelta(hours=2))
    d = schema.Deployment(name="x", started_at=dt.datetime(2026, 6, 1, 12, tzinfo=paris))
    assert d.started_at == dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)
    assert d.started_at.tzinfo is dt.UTC


@pytest.mark.parametrize(("lat", "lon"), [(90, 180), (-90, -180), (0, 0)])
def test_coordinates_at_the_limits_are_accepted(lat, lon):
    assert schema.Deployment(name="x", latitude=lat, longitude=lon).latitude == lat


def test_unknown_fields_are_refused():
    with pytest.raises(ValidationError, match="extra_field"):
        schema.Deployment(name="x", extra_field=1)


def test_time_expansion_gives_the_header_rate():
    r = factories.recording(uuid.uuid4(), capture_samplerate_hz=384_000, time_expansion=10)
    assert r.header_samplerate_hz == 38_400


def test_presence_has_no_box_and_events_need_one():
    with pytest.raises(ValidationError, match="presence detection covers the whole recording"):
        schema.Detection(
            prediction_type=schema.PredictionType.PRESENCE,
            box=schema.BoundingBox(start_time_s=0, end_time_s=1),
            detection_score=0.5,
        )
    with pytest.raises(ValidationError, match="a sequence detection needs a box"):
        schema.Detection(prediction_type=schema.PredictionType.SEQUENCE, detection_score=0.5)
    assert (
        schema.Detection(prediction_type=schema.PredictionType.PRESENCE, detection_score=1).box
        is None
    )


def test_validation_messages_name_the_dotted_path():
    with pytest.raises(ValidationError) as info:
        schema.ModelOutput.model_validate(
            {
                "recording_id": str(uuid.uuid4()),
                "model_name": "m",
                "detections": [
                    {"detection_score": 0.5, "box": {"start_time_s": 0, "end_time_s": 1}},
                    {"detection_score": 2, "box": {"start_time_s": 0, "end_time_s": 1}},
                ],
            }
        )
    assert validation_message(info.value, "model_output") == (
        "model_output.detections.1.detection_score: Input should be less than or equal to 1"
    )


def test_every_record_survives_the_proto_round_trip():
    deployment = schema.Deployment(name="meadow", latitude=-33.9, longitude=151.2)
    assert convert.deployment_from_proto(convert.deployment_to_proto(deployment)) == deployment
    no_position = schema.Deployment(name="lab")
    assert convert.deployment_from_proto(convert.deployment_to_proto(no_position)) == no_position
    recording = factories.recording(
        deployment.id, status=schema.RecordingStatus.FAILED, failure_reason="x"
    )
    assert convert.recording_from_proto(convert.recording_to_proto(recording)) == recording
    output = factories.model_output(recording.id, n_detections=20)
    output.detections.append(
        schema.Detection(prediction_type=schema.PredictionType.PRESENCE, detection_score=0.4)
    )
    output.tags.append(
        schema.PredictedTag(tag=schema.Tag(key="site", value="meadow"), confidence=1)
    )
    assert convert.model_output_from_proto(convert.model_output_to_proto(output)) == output
    message = schema.Message(content="{}", priority=3, attempts=2, last_attempt_at=schema.utc_now())
    assert convert.message_from_proto(convert.message_to_proto(message)) == message
    response = schema.Response(
        message_id=message.id, status=schema.ResponseStatus.TIMEOUT, content="t"
    )
    assert convert.response_from_proto(convert.response_to_proto(response)) == response
    heartbeat = schema.Heartbeat(
        device_id="pi-1", metrics=[schema.Metric(name="free_disk", value=12.5, unit="GB")]
    )
    assert convert.heartbeat_from_proto(convert.heartbeat_to_proto(heartbeat)) == heartbeat
