"""The store's proto-native validator must agree with the schema on every output, good or bad."""

from __future__ import annotations

import copy
import math
import random
import uuid

import pytest
from pydantic import ValidationError

from acoustack import convert
from acoustack.errors import FieldError, InvalidArgumentError, validation_message
from acoustack.testing import factories
from acoustack.v1 import types_pb2 as pb
from acoustack.wire_validation import check_model_output


def base() -> pb.ModelOutput:
    output = factories.model_output(uuid.uuid4(), n_detections=4)
    return convert.model_output_to_proto(output)


def set_det(i, field, value):
    return lambda o: setattr(o.detections[i], field, value)


def set_box(i, field, value):
    return lambda o: setattr(o.detections[i].box, field, value)


def set_tag(i, j, field, value):
    def mutate(o):
        target = o.detections[i].tags[j]
        if field == "confidence":
            target.confidence = value
        else:
            setattr(target.tag, field, value)

    return mutate


def dup_ids(o):
    o.detections[2].id = o.detections[0].id


MUTATIONS = {
    "valid": lambda o: None,
    "no id": lambda o: o.ClearField("id"),
    "bad id": lambda o: setattr(o, "id", "x"),
    "no recording": lambda o: o.ClearField("recording_id"),
    "bad recording": lambda o: setattr(o, "recording_id", "1234"),
    "no model": lambda o: setattr(o, "model_name", ""),
    "long model": lambda o: setattr(o, "model_name", "m" * 201),
    "long version": lambda o: setattr(o, "model_version", "v" * 201),
    "no created_at": lambda o: o.ClearField("created_at"),
    "score > 1": set_det(1, "detection_score", 1.0001),
    "score < 0": set_det(1, "detection_score", -0.5),
    "score NaN": set_det(1, "detection_score", math.nan),
    "score 0": set_det(1, "detection_score", 0.0),
    "score 1": set_det(1, "detection_score", 1.0),
    "bad detection id": set_det(3, "id", "nope"),
    "no detection id": set_det(3, "id", ""),
    "duplicate detection ids": dup_ids,
    "unknown type": set_det(0, "prediction_type", 7),
    "unspecified type": set_det(0, "prediction_type", 0),
    "presence with box": set_det(0, "prediction_type", pb.PREDICTION_TYPE_PRESENCE),
    "presence without box": lambda o: (
        setattr(o.detections[0], "prediction_type", pb.PREDICTION_TYPE_PRESENCE),
        o.detections[0].ClearField("box"),
    ),
    "event without box": lambda o: o.detections[0].ClearField("box"),
    "sequence without box": lambda o: (
        setattr(o.detections[0], "prediction_type", pb.PREDICTION_TYPE_SEQUENCE),
        o.detections[0].ClearField("box"),
    ),
    "end before start": set_box(2, "end_time_s", 0.0),
    "negative start": set_box(2, "start_time_s", -1.0),
    "infinite end": set_box(2, "end_time_s", math.inf),
    "high below low": set_box(2, "high_freq_hz", 1.0),
    "NaN low freq": set_box(2, "low_freq_hz", math.nan),
    "confidence > 1": set_tag(1, 3, "confidence", 2.0),
    "confidence NaN": set_tag(1, 3, "confidence", math.nan),
    "empty tag key": set_tag(1, 0, "key", ""),
    "long tag key": set_tag(1, 0, "key", "k" * 201),
    "long tag value": set_tag(1, 0, "value", "v" * 1001),
    "empty tag value": set_tag(1, 0, "value", ""),
    "output tag confidence": lambda o: o.tags.add(tag=pb.Tag(key="site", value="x"), confidence=3),
    "output tag ok": lambda o: o.tags.add(tag=pb.Tag(key="site", value="x"), confidence=0.3),
    "NUL in model name": lambda o: setattr(o, "model_name", "batdetect2\x00"),
    "control character in version": lambda o: setattr(o, "model_version", "1.3\x1b"),
    "NUL in tag value": set_tag(2, 1, "value", "Myotis\x00"),
    "newline in tag key": set_tag(0, 0, "key", "spe\ncies"),
    "control character in output tag": lambda o: o.tags.add(
        tag=pb.Tag(key="site", value="a\x7fb"), confidence=0.3
    ),
    "created past year 9999": lambda o: setattr(o.created_at, "seconds", 253_402_300_800),
    "created in year 5000": lambda o: setattr(o.created_at, "seconds", 95_617_584_000),
    "created before 1900": lambda o: setattr(o.created_at, "seconds", -2_208_988_801),
    "created with negative nanos": lambda o: setattr(o.created_at, "nanos", -1),
}


@pytest.mark.parametrize("name", MUTATIONS, ids=list(MUTATIONS))
def test_the_wire_check_agrees_with_the_schema(name):
    message = base()
    MUTATIONS[name](message)
    schema_error = None
    try:
        convert.model_output_from_proto(message)
    except ValidationError as exc:
        schema_error = validation_message(exc, "model_output")
    except FieldError as exc:  # a Timestamp that is no time, found while converting
        schema_error = str(exc.under("model_output"))
    wire = copy.deepcopy(message)
    wire_error = None
    try:
        check_model_output(wire)
    except InvalidArgumentError as exc:
        wire_error = str(exc)
    if schema_error is None:
        assert wire_error is None, f"the wire check refused what the schema accepts: {wire_error}"
        # The defaults it fills make an output the schema also accepts, unchanged.
        assert convert.model_output_from_proto(wire).id == uuid.UUID(wire.id)
    else:
        assert wire_error is not None, (
            f"the wire check accepted what the schema refuses: {schema_error}"
        )
        # Same field, same words; the schema may add detail (e.g. which character of a UUID).
        assert any(line.startswith(wire_error) for line in schema_error.split("; ")), (
            wire_error,
            schema_error,
        )


def test_random_corruptions_get_the_same_verdict():
    rng = random.Random(1234)
    values = [-1.0, 0.0, 0.5, 1.0, 1.5, math.nan, math.inf, 1e9]
    for _ in range(300):
        message = base()
        i = rng.randrange(4)
        field = rng.choice(
            ["detection_score", "start_time_s", "end_time_s", "low_freq_hz", "high_freq_hz"]
        )
        target = message.detections[i] if field == "detection_score" else message.detections[i].box
        setattr(target, field, rng.choice(values))
        try:
            convert.model_output_from_proto(message)
            schema_ok = True
        except ValidationError:
            schema_ok = False
        try:
            check_model_output(message)
            wire_ok = True
        except InvalidArgumentError:
            wire_ok = False
        assert schema_ok == wire_ok, (field, getattr(target, field))


def test_a_tag_sent_without_a_confidence_is_certain_on_both_paths():
    """proto: an unset PredictedTag.confidence means 1, as the schema's default; an explicit 0
    stays 0 (the threshold then drops it)."""
    message = base()
    message.detections[0].tags[0].ClearField("confidence")
    message.detections[1].tags[0].confidence = 0.0
    message.tags.add(tag=pb.Tag(key="site", value="pond"))  # no confidence
    parsed = convert.model_output_from_proto(message)
    check_model_output(message)
    assert parsed.detections[0].tags[0].confidence == 1.0
    assert parsed.detections[1].tags[0].confidence == 0.0
    assert parsed.tags[0].confidence == 1.0
    assert message.detections[0].tags[0].confidence == 1.0
    assert message.detections[1].tags[0].confidence == 0.0
    assert message.tags[0].confidence == 1.0
