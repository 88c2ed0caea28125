"""What the detector makes of a model server that fails or answers badly (model.proto, STATUS CODES
and ModelOutput): real gRPC servers on loopback ports answering each status code, never answering,
or returning malformed outputs."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import grpc
import pytest

from acoustack.errors import AcoustackError
from acoustack.testing.servers import free_port
from acoustack.v1 import types_pb2 as pb
from acoustack_detector.remote_model import OUTCOMES, ModelServerError, RemoteModel

MYOTIS = Path(__file__).resolve().parent / "data" / "audio" / "20170701_213954-MYOMYS-LR_0_0.5.wav"

Code = grpc.StatusCode
# Everything a server can send but OK; the contract says which of them may pass.
PASSING = {
    Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.FAILED_PRECONDITION, Code.ABORTED,
    Code.CANCELLED, Code.INTERNAL, Code.UNKNOWN,
}  # fmt: skip
FAILING_CODES = [code for code in Code if code is not Code.OK]


@pytest.fixture
def recording(recordings_root, make_recording):
    return make_recording(recordings_root / MYOTIS.name)


@pytest.mark.parametrize("code", FAILING_CODES, ids=[c.name for c in FAILING_CODES])
def test_each_status_code_has_its_outcome_and_names_the_server(scripted_server, recording, code):
    target, server = scripted_server
    server.answers = [code]
    with pytest.raises(ModelServerError) as failed:
        RemoteModel(target).run(recording)
    error = failed.value
    assert error.code is code
    assert error.retry is (code in PASSING)
    assert str(error).startswith(f"model server {target}: Detect: {code.name}: scripted")
    assert code in OUTCOMES or error.retry  # a code the table does not list is retried


def test_the_table_says_what_the_proto_says():
    proto = (MYOTIS.parents[5] / "proto" / "acoustack" / "v1" / "model.proto").read_text()
    section = proto.split("// STATUS CODES")[1].split("service Model")[0]
    for code, (retry, _) in OUTCOMES.items():
        assert code.name in section
        assert retry is (code in PASSING), code


def test_a_server_that_never_answers_is_given_up_on_at_the_deadline(scripted_server, recording):
    target, server = scripted_server
    server.answers = ["hang"]
    started = time.monotonic()
    with pytest.raises(ModelServerError) as failed:
        RemoteModel(target, call_timeout_s=0.5).run(recording)
    assert time.monotonic() - started < 5
    assert failed.value.code is Code.DEADLINE_EXCEEDED and failed.value.retry
    assert "must answer within" in str(failed.value)


def test_a_server_that_is_not_running_may_come_back():
    target = f"127.0.0.1:{free_port()}"
    with pytest.raises(ModelServerError) as failed:
        RemoteModel(target).check()
    assert failed.value.retry and failed.value.code is Code.UNAVAILABLE
    assert str(failed.value).startswith(f"model server {target}: Info: UNAVAILABLE")


def _malformed(server, mutate) -> pb.ModelOutput:
    output = server.good_output(detections=5)
    mutate(output)
    return output


def _set(field, value, index=3):
    return lambda o: setattr(o.detections[index], field, value)


def _box(field, value, index=3):
    return lambda o: setattr(o.detections[index].box, field, value)


MALFORMED = {
    "score above 1": (
        _set("detection_score", 1.7),
        "detections[3].detection_score: 1.7 is above 1",
    ),
    "score below 0": (
        _set("detection_score", -0.1),
        "detections[3].detection_score: -0.1 is below 0",
    ),
    "score NaN": (
        _set("detection_score", float("nan")),
        "detections[3].detection_score: nan is not a finite number",
    ),
    "id not a UUID": (
        _set("id", "call-3"),
        "detections[3].id: 'call-3' is not a UUID (leave it empty for one)",
    ),
    "id twice": (
        lambda o: [setattr(o.detections[i], "id", str(uuid.UUID(int=7))) for i in (1, 4)],
        "detections[4].id: the same as detections[1].id",
    ),
    "box in file time": (
        _box("end_time_s", 4.9),
        "detections[3].box.end_time_s: 4.9 s is past the end of the recording (0.5 s of real "
        "time); boxes are in real time, not the file's time",
    ),
    "box backwards": (
        _box("start_time_s", 0.31),
        "detections[3].box.end_time_s: 0.305 is before start_time_s 0.31",
    ),
    "no box": (
        lambda o: o.detections[3].ClearField("box"),
        "detections[3].box: required for an event or sequence detection",
    ),
    "presence with a box": (
        _set("prediction_type", pb.PREDICTION_TYPE_PRESENCE),
        "detections[3].box: a presence detection covers the whole recording",
    ),
    "unknown type": (_set("prediction_type", 9), "detections[3].prediction_type: 9 is not a"),
    "empty tag key": (
        lambda o: setattr(o.detections[2].tags[0].tag, "key", ""),
        "detections[2].tags[0].tag.key: required, and empty",
    ),
    "tag confidence": (
        lambda o: setattr(o.detections[2].tags[0], "confidence", 2.0),
        "detections[2].tags[0].confidence: 2 is above 1",
    ),
    "control character": (
        lambda o: setattr(o.detections[0].tags[0].tag, "value", "Myo\x1btis"),
        "detections[0].tags[0].tag.value: contains the control character U+001B",
    ),
    "long model name": (
        lambda o: setattr(o, "model_name", "m" * 201),
        "model_name: 201 characters, more than the limit of 200",
    ),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_output_is_refused_naming_the_server_and_the_field(
    scripted_server, recording, name
):
    target, server = scripted_server
    mutate, expected = MALFORMED[name]
    server.answers = [_malformed(server, mutate)]
    with pytest.raises(ModelServerError) as failed:
        RemoteModel(target).run(recording)
    assert not failed.value.retry  # the same recording would get the same answer
    assert str(failed.value).startswith(f"model server {target}: Detect: malformed output: ")
    assert expected in str(failed.value)


def test_many_problems_are_counted_not_all_listed(scripted_server, recording):
    target, server = scripted_server
    server.answers = [
        _malformed(server, lambda o: [setattr(d, "detection_score", 3) for d in o.detections])
    ]
    with pytest.raises(ModelServerError, match=r"detections\[2\].*; and 2 more"):
        RemoteModel(target).run(recording)


def test_what_the_detector_owns_is_filled_in_and_a_bare_tag_is_certain(scripted_server, recording):
    target, server = scripted_server
    output = server.good_output()
    output.id, output.recording_id = "not even a uuid", "nor this"
    output.created_at.seconds = 1
    server.answers = [output]
    stored = RemoteModel(target).run(recording)
    assert stored.recording_id == recording.id
    assert (stored.model_name, stored.model_version) == ("scripted", "0.1")  # from Info
    assert stored.created_at.year >= 2025
    # A tag without a confidence is certain (the proto's default), so the 0.2 threshold keeps it.
    assert [t.confidence for d in stored.detections for t in d.tags] == [1.0] * 4


def test_an_info_without_a_name_is_refused(scripted_server, recording):
    target, server = scripted_server
    server.info.name = ""
    with pytest.raises(ModelServerError, match="Info: name: required") as failed:
        RemoteModel(target).run(recording)
    assert isinstance(failed.value, AcoustackError) and not failed.value.retry


def test_a_response_without_an_output_is_refused(scripted_server, recording):
    target, server = scripted_server
    server.answers = [None]  # DetectResponse(model_output=None): the field left unset
    with pytest.raises(ModelServerError, match="model_output: required, and not set"):
        RemoteModel(target).run(recording)
