"""Bad requests never break the store: each is refused by field with INVALID_ARGUMENT (or the code
the contract gives its case), nothing of it is written, and every read works afterwards.

One test per finding of the outside fuzz run (issue 16), over a real loopback server and Postgres.
"""

from __future__ import annotations

import datetime as dt
import uuid

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from acoustack import convert, schema
from acoustack.errors import FailedPreconditionError, InvalidArgumentError
from acoustack.testing import factories
from acoustack.v1 import store_pb2 as spb
from acoustack.v1 import types_pb2 as pb

T0 = dt.datetime(2026, 6, 1, 21, 0, tzinfo=dt.UTC)
STORE = spb.DESCRIPTOR.services_by_name["Store"]


def refused(call, request) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=10)
    return info.value.code(), info.value.details()


def everything_reads(client, deployment) -> None:
    """What a user checks after a bad request: every listing and every recording still reads."""
    entries = client.list_recordings(include_model_outputs=True)
    assert client.list_recordings(deployment_id=str(deployment.id)) == [
        client.get_recording(e.recording.id) for e in entries
    ]
    client.list_detections()
    client.get_unsent_messages()
    client.list_responses(limit=100)
    client.current_deployment()


# --- finding 1: a path over the limit was committed, then broke every read ------------------


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/rec/" + "x" * 996, "String should have at most 1000 characters (it has 1001)"),
        ("/rec/a\x00.wav", "contains a NUL byte (at character 6)"),
        ("/rec/a\n.wav", "contains the control character U+000A (at character 6)"),
    ],
    ids=["over-long", "NUL", "newline"],
)
def test_a_path_the_read_side_refuses_is_never_written(client, deployment, path, problem):
    recording = factories.recording(deployment.id, path="/rec/a.wav")
    client.store_recording(recording)
    with pytest.raises(InvalidArgumentError) as info:
        client.update_recording_path(recording.id, path, schema.RecordingStatus.SAVED)
    assert str(info.value) == f"path: {problem}"
    kept = client.get_recording(recording.id).recording
    assert (kept.path, kept.status) == ("/rec/a.wav", pb.RECORDING_STATUS_TEMPORARY)
    assert [e.recording.id for e in client.list_recordings()] == [str(recording.id)]
    everything_reads(client, deployment)


def test_a_path_at_the_limit_is_stored_and_reads_back(client, deployment):
    recording = factories.recording(deployment.id)
    client.store_recording(recording)
    longest = "/rec/" + "x" * 995
    assert client.update_recording_path(recording.id, longest).path == longest
    assert client.get_recording(recording.id).recording.path == longest
    everything_reads(client, deployment)


# --- finding 2: timestamps that are no time, or outside what the store keeps ----------------

BAD_TIMES = {
    "past year 9999": (Timestamp(seconds=253_402_300_800), "seconds 253402300800 is outside"),
    "before year 1": (Timestamp(seconds=-62_135_596_801), "seconds -62135596801 is outside"),
    "nanos below 0": (Timestamp(seconds=1_780_000_000, nanos=-1), "nanos -1 is outside"),
    "nanos of a whole second": (
        Timestamp(seconds=1_780_000_000, nanos=1_000_000_000),
        "nanos 1000000000 is outside",
    ),
}


def _with_time(store_client, deployment, rpc: str, ts: Timestamp):
    """(request, field named) for each RPC that takes a time."""
    recording = factories.recording(deployment.id)
    if rpc in ("StoreModelOutput", "ListDetections"):
        store_client.store_recording(recording)
    if rpc == "StartDeployment":
        return spb.StartDeploymentRequest(name="hedge", started_at=ts), "started_at"
    if rpc == "EndDeployment":
        return spb.EndDeploymentRequest(deployment_id=str(deployment.id), ended_at=ts), "ended_at"
    if rpc == "StoreRecording":
        proto = convert.recording_to_proto(recording)
        proto.started_at.CopyFrom(ts)
        return spb.StoreRecordingRequest(recording=proto), "recording.started_at"
    if rpc == "ListRecordings":
        return spb.ListRecordingsRequest(started_from=ts), "started_from"
    if rpc == "StoreModelOutput":
        output = convert.model_output_to_proto(factories.model_output(recording.id))
        output.created_at.CopyFrom(ts)
        return spb.StoreModelOutputRequest(model_output=output), "model_output.created_at"
    if rpc == "StoreModelOutput.messages":
        store_client.store_recording(recording)
        output = convert.model_output_to_proto(factories.model_output(recording.id))
        message = convert.message_to_proto(schema.Message(content="{}"))
        message.created_at.CopyFrom(ts)
        request = spb.StoreModelOutputRequest(model_output=output, messages=[message])
        return request, "messages.0.created_at"
    if rpc == "ListDetections":
        return spb.ListDetectionsRequest(started_to=ts), "started_to"
    if rpc == "StoreMessage":
        message = convert.message_to_proto(schema.Message(content="{}"))
        message.created_at.CopyFrom(ts)
        return spb.StoreMessageRequest(message=message), "message.created_at"
    if rpc == "StoreResponse":
        message = schema.Message(content="{}")
        store_client.store_message(message)
        response = convert.response_to_proto(
            schema.Response(message_id=message.id, status=schema.ResponseStatus.SUCCESS)
        )
        response.received_at.CopyFrom(ts)
        return spb.StoreResponseRequest(response=response), "response.received_at"
    raise AssertionError(rpc)


TIME_RPCS = [
    "StartDeployment",
    "EndDeployment",
    "StoreRecording",
    "ListRecordings",
    "StoreModelOutput",
    "StoreModelOutput.messages",
    "ListDetections",
    "StoreMessage",
    "StoreResponse",
]


@pytest.mark.parametrize("time", BAD_TIMES, ids=list(BAD_TIMES))
@pytest.mark.parametrize("rpc", TIME_RPCS)
def test_a_timestamp_that_is_no_time_is_refused_by_field(client, deployment, rpc, time):
    ts, problem = BAD_TIMES[time]
    request, field = _with_time(client, deployment, rpc, ts)
    code, details = refused(getattr(client.stub, rpc.split(".")[0]), request)
    assert code is grpc.StatusCode.INVALID_ARGUMENT, details
    assert details.startswith(f"{field}: {problem}"), details
    everything_reads(client, deployment)
    assert client.get_deployment(deployment.id).HasField("ended_at") is False
    assert len(client.list_recordings()) <= 1  # the ones stored to refer to, nothing more
    assert client.list_detections() == []
    assert client.get_unsent_messages(limit=100) == [] or rpc == "StoreResponse"


@pytest.mark.parametrize("rpc", ["StoreRecording", "StoreModelOutput", "StoreMessage"])
def test_a_time_outside_what_the_store_keeps_is_refused(client, deployment, rpc):
    year_5000 = Timestamp(seconds=95_617_584_000)  # a Timestamp, but past limits.LATEST_TIME
    request, field = _with_time(client, deployment, rpc, year_5000)
    code, details = refused(getattr(client.stub, rpc), request)
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details == (
        f"{field}: 5000-01-01T00:00:00+00:00 is outside the times the store keeps "
        "(1900-01-01 to before 3000-01-01)"
    )
    everything_reads(client, deployment)


# --- finding 3: a NUL byte in a stored or queried string ------------------------------------


def _nul_requests(client, deployment):
    recording = factories.recording(deployment.id)
    client.store_recording(recording)
    message = schema.Message(content="{}")
    client.store_message(message)

    def recording_with(**change):
        proto = convert.recording_to_proto(factories.recording(deployment.id))
        for key, value in change.items():
            setattr(proto, key, value)
        return spb.StoreRecordingRequest(recording=proto)

    output = convert.model_output_to_proto(factories.model_output(recording.id))
    output.detections[1].tags[2].tag.value = "Myotis\x00"
    named = convert.model_output_to_proto(factories.model_output(recording.id))
    named.model_name = "batdetect2\x00"
    content = convert.message_to_proto(schema.Message(content="{}"))
    content.content = '{"a": "\x00"}'
    response = convert.response_to_proto(
        schema.Response(message_id=message.id, status=schema.ResponseStatus.FAILED)
    )
    response.content = "refused\x00"
    return {
        "deployment name": (
            "StartDeployment",
            spb.StartDeploymentRequest(name="meadow\x00"),
            "name",
        ),
        "path": ("StoreRecording", recording_with(path="/rec/\x00.wav"), "recording.path"),
        "device id": ("StoreRecording", recording_with(device_id="dev\x00"), "recording.device_id"),
        "failure reason": (
            "StoreRecording",
            recording_with(status=pb.RECORDING_STATUS_FAILED, failure_reason="lost\x00"),
            "recording.failure_reason",
        ),
        "reason": (
            "MarkRecordingFailed",
            spb.MarkRecordingFailedRequest(recording_id=str(recording.id), reason="lost\x00"),
            "reason",
        ),
        "tag value": (
            "StoreModelOutput",
            spb.StoreModelOutputRequest(model_output=output),
            "model_output.detections.1.tags.2.tag.value",
        ),
        "model name": (
            "StoreModelOutput",
            spb.StoreModelOutputRequest(model_output=named),
            "model_output.model_name",
        ),
        "message content": (
            "StoreMessage",
            spb.StoreMessageRequest(message=content),
            "message.content",
        ),
        "response content": (
            "StoreResponse",
            spb.StoreResponseRequest(response=response),
            "response.content",
        ),
        "queried path": (
            "GetRecordingsByPath",
            spb.GetRecordingsByPathRequest(paths=[recording.path, "/rec/\x00"]),
            "paths.1",
        ),
        "queried model": (
            "ListDetections",
            spb.ListDetectionsRequest(model_name="m\x00"),
            "model_name",
        ),
        "queried tag": (
            "ListDetections",
            spb.ListDetectionsRequest(tag_key="species", tag_value="\x00"),
            "tag_value",
        ),
    }


NUL_CASES = [
    "deployment name",
    "path",
    "device id",
    "failure reason",
    "reason",
    "tag value",
    "model name",
    "message content",
    "response content",
    "queried path",
    "queried model",
    "queried tag",
]


@pytest.mark.parametrize("case", NUL_CASES)
def test_a_nul_byte_is_refused_by_field_and_nothing_is_written(client, deployment, case):
    rpc, request, field = _nul_requests(client, deployment)[case]
    before = (
        [e.recording for e in client.list_recordings()],
        client.get_unsent_messages(limit=100),
        client.list_responses(limit=100),
    )
    code, details = refused(getattr(client.stub, rpc), request)
    assert code is grpc.StatusCode.INVALID_ARGUMENT, details
    assert details.startswith(f"{field}: contains a NUL byte (at character "), details
    after = (
        [e.recording for e in client.list_recordings()],
        client.get_unsent_messages(limit=100),
        client.list_responses(limit=100),
    )
    assert after == before
    assert client.list_detections() == []
    everything_reads(client, deployment)


# --- finding 4: bytes that do not parse, on every RPC ---------------------------------------

GARBAGE = {
    "invalid varint": b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    "length past the end": b"\x0a\x7fabc",
    "end-group without a start": b"\x0c",
}


def garbage_cases():
    """Every RPC with every kind of bytes no message parses from; and, where field 1 of the
    request is a string, a string that is not UTF-8."""
    for method in STORE.methods:
        for kind, data in GARBAGE.items():
            yield pytest.param(method, data, id=f"{method.name}-{kind}")
        first = method.input_type.fields_by_number.get(1)
        if first is not None and first.type == first.TYPE_STRING:
            yield pytest.param(method, b"\x0a\x02\xff\xfe", id=f"{method.name}-not UTF-8")


@pytest.mark.parametrize(("method", "data"), list(garbage_cases()))
def test_bytes_that_do_not_parse_are_an_invalid_argument(storage_server, method, data):
    with grpc.insecure_channel(f"127.0.0.1:{storage_server.port}") as channel:
        call = channel.unary_unary(
            f"/{STORE.full_name}/{method.name}", request_serializer=None, response_deserializer=None
        )
        code, details = refused(call, data)
    assert code is grpc.StatusCode.INVALID_ARGUMENT, details
    assert details == f"request: the bytes are not a valid {method.input_type.full_name}"


def test_every_store_rpc_is_covered_by_the_garbage_test():
    covered = {case.values[0].name for case in garbage_cases()}
    assert covered == {m.name for m in STORE.methods}
    assert len(covered) >= 17  # the 17 of the outside fuzz run, and any added since


# --- finding 5: an over-long value echoed whole ---------------------------------------------


def test_an_over_long_value_is_quoted_in_part_with_its_length(client):
    long_id = "d" * 20_000
    code, details = refused(
        client.stub.GetDeployment, spb.GetDeploymentRequest(deployment_id=long_id)
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details == f"deployment_id: {'d' * 100!r}… (20000 characters) is not a UUID"


@pytest.mark.parametrize(
    ("rpc", "request_"),
    [
        ("GetRecording", spb.GetRecordingRequest(recording_id="€" * 50_000)),
        ("ListRecordings", spb.ListRecordingsRequest(deployment_id="\x07" * 50_000)),
        ("ListResponses", spb.ListResponsesRequest(message_id="x" * 200_000)),
        ("GetRecordingsByPath", spb.GetRecordingsByPathRequest(paths=["/" + "€" * 5000] * 3)),
        (
            "StoreMessage",
            spb.StoreMessageRequest(message=pb.Message(id="🦇" * 30_000, content="x")),
        ),
    ],
    ids=["GetRecording", "ListRecordings", "ListResponses", "GetRecordingsByPath", "StoreMessage"],
)
def test_every_error_reaches_the_client_whatever_it_was_sent(client, rpc, request_):
    code, details = refused(getattr(client.stub, rpc), request_)
    assert code is grpc.StatusCode.INVALID_ARGUMENT, details
    assert len(details.encode()) < 1000


# --- finding 6: marking failed a deleted recording whose path is taken ----------------------


@pytest.mark.parametrize(
    "only_if", [schema.RecordingStatus.DELETED, None], ids=["only-if", "plain"]
)
def test_a_deleted_recording_whose_path_is_taken_stays_deleted(client, deployment, only_if):
    old = factories.recording(deployment.id, path="/data/a.wav")
    client.store_recording(old)
    client.mark_recording_deleted(old.id)
    new = factories.recording(deployment.id, path="/data/a.wav")
    client.store_recording(new)
    with pytest.raises(FailedPreconditionError) as info:
        client.mark_recording_failed(old.id, "its file vanished", only_if=only_if)
    assert str(info.value) == (
        f"recording_id: recording {old.id} is deleted and its path '/data/a.wav' now belongs to "
        f"recording {new.id}: marking it failed would give that file two live recordings "
        "(leave it deleted)"
    )
    assert client.get_recording(old.id).recording.status == pb.RECORDING_STATUS_DELETED
    kept = client.get_recording(new.id).recording
    assert (kept.path, kept.status) == ("/data/a.wav", pb.RECORDING_STATUS_TEMPORARY)
    everything_reads(client, deployment)


def test_a_path_taken_by_another_recording_is_named_on_a_move(client, deployment):
    a = factories.recording(deployment.id, path="/data/a.wav")
    b = factories.recording(deployment.id, path="/data/b.wav")
    client.store_recording(a)
    client.store_recording(b)
    code, details = refused(
        client.stub.UpdateRecordingPath,
        spb.UpdateRecordingPathRequest(recording_id=str(b.id), path="/data/a.wav"),
    )
    assert code is grpc.StatusCode.ALREADY_EXISTS
    assert details == f"path: '/data/a.wav' already belongs to recording {a.id}"


# --- the rest of "validate before any write" -------------------------------------------------


def test_control_characters_are_refused_in_names_but_free_text_keeps_line_breaks(
    client, deployment
):
    code, details = refused(client.stub.StartDeployment, spb.StartDeploymentRequest(name="a\x1bb"))
    assert (code, details) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "name: contains the control character U+001B (at character 1)",
    )
    recording = factories.recording(deployment.id)
    client.store_recording(recording)
    failed = client.mark_recording_failed(recording.id, "lost:\n\tdisk full\r\n")
    assert failed.failure_reason == "lost:\n\tdisk full\r\n"
    assert client.get_recording(recording.id).recording.failure_reason == failed.failure_reason


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            spb.ListDetectionsRequest(min_score=float("nan")),
            "min_score: Input should be a finite number",
        ),
        (
            spb.ListDetectionsRequest(max_score=float("inf")),
            "max_score: Input should be a finite number",
        ),
        (
            spb.ListDetectionsRequest(min_score=-0.5),
            "min_score: Input should be greater than or equal to 0",
        ),
        (spb.ListDetectionsRequest(order=7), "order: 7 is not a SortOrder"),
    ],
)
def test_query_numbers_and_enums_out_of_range_are_refused(client, request_, message):
    assert refused(client.stub.ListDetections, request_) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        message,
    )


def test_coordinates_that_are_not_numbers_are_refused(client):
    code, details = refused(
        client.stub.StartDeployment,
        spb.StartDeploymentRequest(name="x", latitude=float("nan"), longitude=0.0),
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("latitude: Input should be a finite number")
    assert client.current_deployment() is None


def test_a_bad_id_is_refused_before_anything_is_read(client):
    code, details = refused(
        client.stub.MarkRecordingDeleted, spb.MarkRecordingDeletedRequest(recording_id="'; --")
    )
    assert (code, details) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        'recording_id: "\'; --" is not a UUID',
    )


def test_a_message_priority_past_what_postgres_holds_is_refused_in_process(store):
    with pytest.raises(ValueError, match="priority"):
        schema.Message(content="x", priority=2**31)
    assert store.get_unsent_messages(10) == []


def test_an_unknown_recording_id_is_still_not_found(client):
    code, _ = refused(
        client.stub.GetRecording, spb.GetRecordingRequest(recording_id=str(uuid.uuid4()))
    )
    assert code is grpc.StatusCode.NOT_FOUND
