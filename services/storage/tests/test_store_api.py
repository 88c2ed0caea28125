"""The Store contract over a real loopback gRPC server and a real Postgres database."""

from __future__ import annotations

import datetime as dt
import uuid

import grpc
import pytest

from acoustack import convert, schema
from acoustack.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from acoustack.testing import factories
from acoustack.v1 import store_pb2 as spb
from acoustack.v1 import types_pb2 as pb

T0 = dt.datetime(2026, 6, 1, 21, 0, tzinfo=dt.UTC)


def code_of(call, *args, **kwargs) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kwargs)
    return info.value.code(), info.value.details()


# --- deployments ----------------------------------------------------------------------------


def test_a_deployment_starts_and_ends(client):
    started = client.start_deployment("meadow", 52.2, 0.12, started_at=T0)
    assert client.current_deployment().id == started.id
    assert (started.latitude, started.longitude) == (52.2, 0.12)
    assert started.started_at.ToDatetime(tzinfo=dt.UTC) == T0
    ended = client.end_deployment(started.id, T0 + dt.timedelta(days=3))
    assert ended.ended_at.ToDatetime(tzinfo=dt.UTC) == T0 + dt.timedelta(days=3)
    assert client.current_deployment() is None
    assert client.get_deployment(started.id) == ended


def test_only_one_deployment_is_active(client, deployment):
    with pytest.raises(FailedPreconditionError, match="'meadow'.*still active"):
        client.start_deployment("hedge", 51.0, -1.0)
    client.end_deployment(deployment.id)
    assert client.start_deployment("hedge", 51.0, -1.0).name == "hedge"


def test_a_retried_start_returns_the_same_deployment(client):
    deployment_id = uuid.uuid4()
    first = client.start_deployment("meadow", 1.0, 2.0, deployment_id=deployment_id, started_at=T0)
    again = client.start_deployment("meadow", 1.0, 2.0, deployment_id=deployment_id, started_at=T0)
    assert first == again


def test_ending_twice_keeps_the_first_end(client, deployment):
    first = client.end_deployment(deployment.id)
    assert client.end_deployment(deployment.id) == first


@pytest.mark.parametrize(
    ("latitude", "longitude", "field"),
    [
        (90.5, 0.0, "latitude"),
        (-91.0, 0.0, "latitude"),
        (0.0, 180.01, "longitude"),
        (0.0, -200.0, "longitude"),
    ],
)
def test_coordinates_out_of_range_are_refused_by_name(client, latitude, longitude, field):
    with pytest.raises(InvalidArgumentError, match=f"^{field}: Input should be"):
        client.start_deployment("x", latitude, longitude)
    assert client.current_deployment() is None


def test_a_deployment_needs_a_name_and_both_coordinates(client):
    with pytest.raises(InvalidArgumentError, match="name: Field required"):
        client.start_deployment("", 1.0, 1.0)
    with pytest.raises(InvalidArgumentError, match="latitude and longitude go together"):
        client.start_deployment("x", 1.0, None)


def test_unknown_and_malformed_deployment_ids(client):
    with pytest.raises(NotFoundError, match="deployment_id: no deployment"):
        client.end_deployment(uuid.uuid4())
    with pytest.raises(InvalidArgumentError, match="deployment_id: 'nope' is not a UUID"):
        client.get_deployment("nope")


def test_end_before_start_is_refused(client):
    started = client.start_deployment("meadow", 1.0, 1.0, started_at=T0)
    with pytest.raises(InvalidArgumentError, match="ended_at: .* is before the deployment started"):
        client.end_deployment(started.id, T0 - dt.timedelta(seconds=1))
    assert client.current_deployment().id == started.id


# --- recordings -----------------------------------------------------------------------------


def test_a_recording_is_stored_and_read_back_whole(client, deployment):
    recording = factories.recording(
        deployment.id, capture_samplerate_hz=384_000, time_expansion=10.0, channels=2, started_at=T0
    )
    reply = client.store_recording(recording)
    assert reply.created
    entry = client.get_recording(recording.id)
    assert convert.recording_from_proto(entry.recording) == recording
    # Time expansion is persisted: capture rate and factor both come back.
    assert entry.recording.capture_samplerate_hz == 384_000
    assert entry.recording.time_expansion == 10.0
    assert entry.recording.status == pb.RECORDING_STATUS_TEMPORARY


def test_storing_the_same_recording_again_is_harmless(client, deployment):
    recording = factories.recording(deployment.id)
    assert client.store_recording(recording).created
    again = client.store_recording(recording)
    assert not again.created
    assert len(client.list_recordings()) == 1


def test_a_reused_id_with_other_content_is_refused(client, deployment):
    recording = factories.recording(deployment.id)
    client.store_recording(recording)
    other = recording.model_copy(update={"path": "/elsewhere.wav"})
    with pytest.raises(AlreadyExistsError, match=f"recording.id: recording {recording.id}"):
        client.store_recording(other)


def test_two_recordings_cannot_share_a_file(client, deployment):
    first = factories.recording(deployment.id, path="/rec/a.wav")
    client.store_recording(first)
    with pytest.raises(
        AlreadyExistsError,
        match=f"recording.path: '/rec/a.wav' already belongs to recording {first.id}",
    ):
        client.store_recording(factories.recording(deployment.id, path="/rec/a.wav"))


def test_two_recordings_in_the_same_second_both_stay(client, deployment):
    a = factories.recording(deployment.id, started_at=T0)
    b = factories.recording(deployment.id, started_at=T0)
    client.store_recording(a)
    client.store_recording(b)
    assert {e.recording.id for e in client.list_recordings()} == {str(a.id), str(b.id)}


def test_a_recording_needs_a_known_deployment(client):
    with pytest.raises(NotFoundError, match="recording.deployment_id: no deployment"):
        client.store_recording(factories.recording(uuid.uuid4()))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"capture_samplerate_hz": 0}, "recording.capture_samplerate_hz: Field required"),
        ({"duration_s": -1.0}, "recording.duration_s: Input should be greater than or equal to 0"),
        ({"path": ""}, "recording.path: Field required"),
        ({"id": "not-a-uuid"}, "recording.id: Input should be a valid UUID"),
        ({"channels": 65}, "recording.channels: Input should be less than or equal to 64"),
        ({"status": 42}, "recording.status: Input should be"),
    ],
)
def test_bad_recordings_are_refused_by_field(client, deployment, change, message):
    proto = convert.recording_to_proto(factories.recording(deployment.id))
    for key, value in change.items():
        setattr(proto, key, value)
    with pytest.raises(InvalidArgumentError, match=message):
        client.store_recording(proto)
    assert client.list_recordings() == []


def test_a_recording_without_a_start_time_is_refused(client, deployment):
    proto = convert.recording_to_proto(factories.recording(deployment.id))
    proto.ClearField("started_at")
    with pytest.raises(InvalidArgumentError, match="recording.started_at: Field required"):
        client.store_recording(proto)


def test_an_empty_request_is_invalid_not_unknown(client):
    code, details = code_of(client.stub.StoreRecording, spb.StoreRecordingRequest())
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details == "recording: required"


def test_recordings_by_path_report_the_missing_ones(client, deployment):
    a = factories.recording(deployment.id, path="/rec/a.wav")
    client.store_recording(a)
    reply = client.get_recordings_by_path(["/rec/a.wav", "/rec/nope.wav"])
    assert [e.recording.id for e in reply.entries] == [str(a.id)]
    assert list(reply.missing_paths) == ["/rec/nope.wav"]


def test_recordings_by_time_range_and_status(client, deployment):
    stored = []
    for minutes in range(5):
        r = factories.recording(deployment.id, started_at=T0 + dt.timedelta(minutes=minutes))
        client.store_recording(r)
        stored.append(r)
    client.mark_recording_failed(stored[4].id, "microphone lost")
    window = client.list_recordings(
        started_from=T0 + dt.timedelta(minutes=1), started_to=T0 + dt.timedelta(minutes=3)
    )
    assert [e.recording.id for e in window] == [str(stored[1].id), str(stored[2].id)]
    newest = client.list_recordings(order=spb.SORT_ORDER_NEWEST_FIRST, limit=2)
    assert [e.recording.id for e in newest] == [str(stored[4].id), str(stored[3].id)]
    temporary = client.list_recordings(statuses=[schema.RecordingStatus.TEMPORARY])
    assert len(temporary) == 4
    failed = client.list_recordings(statuses=[schema.RecordingStatus.FAILED])
    assert failed[0].recording.failure_reason == "microphone lost"


def test_a_limit_beyond_the_maximum_is_refused(client):
    with pytest.raises(InvalidArgumentError, match="limit: must be between 1 and 10000"):
        client.list_recordings(limit=10_001)


def test_file_management_moves_and_deletes(client, deployment):
    r = factories.recording(deployment.id, path="/tmp/rec.wav")
    client.store_recording(r)
    saved = client.update_recording_path(
        r.id, "/data/2026/06/01/rec.wav", schema.RecordingStatus.SAVED
    )
    assert (saved.path, saved.status) == ("/data/2026/06/01/rec.wav", pb.RECORDING_STATUS_SAVED)
    assert client.get_recordings_by_path(["/data/2026/06/01/rec.wav"]).entries[
        0
    ].recording.id == str(r.id)
    deleted = client.mark_recording_deleted(r.id)
    assert deleted.status == pb.RECORDING_STATUS_DELETED
    # A deleted recording's old path can be used again.
    client.store_recording(factories.recording(deployment.id, path="/data/2026/06/01/rec.wav"))


def test_updates_to_unknown_recordings_are_not_found(client):
    with pytest.raises(NotFoundError, match="recording_id: no recording"):
        client.update_recording_path(uuid.uuid4(), "/x.wav")
    with pytest.raises(NotFoundError):
        client.mark_recording_deleted(uuid.uuid4())
    with pytest.raises(InvalidArgumentError, match="reason: say why"):
        client.mark_recording_failed(uuid.uuid4(), " ")


def test_marking_failed_only_if_still_temporary_leaves_a_filed_recording_alone(client, deployment):
    temporary = factories.recording(deployment.id, path="/tmp/a.wav")
    filed = factories.recording(deployment.id, path="/tmp/b.wav")
    client.store_recording(temporary)
    client.store_recording(filed)
    client.update_recording_path(filed.id, "/data/b.wav", schema.RecordingStatus.SAVED)
    only_temporary = {"only_if": schema.RecordingStatus.TEMPORARY}
    failed = client.mark_recording_failed(temporary.id, "file lost", **only_temporary)
    assert (failed.status, failed.failure_reason) == (pb.RECORDING_STATUS_FAILED, "file lost")
    with pytest.raises(FailedPreconditionError, match="is saved now, not temporary: left as it is"):
        client.mark_recording_failed(filed.id, "file lost", **only_temporary)
    kept = client.get_recording(filed.id).recording
    assert (kept.status, kept.path) == (pb.RECORDING_STATUS_SAVED, "/data/b.wav")
    with pytest.raises(NotFoundError, match="recording_id: no recording"):
        client.mark_recording_failed(uuid.uuid4(), "file lost", **only_temporary)
    with pytest.raises(grpc.RpcError) as bad:
        client.stub.MarkRecordingFailed(
            spb.MarkRecordingFailedRequest(
                recording_id=str(filed.id), reason="x", only_if_status=99
            ),
            timeout=10,
        )
    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "only_if_status" in bad.value.details()


# --- model outputs --------------------------------------------------------------------------


def test_a_model_output_with_detections_and_tags_round_trips(client, deployment):
    r = factories.recording(deployment.id)
    client.store_recording(r)
    output = factories.model_output(r.id, n_detections=200, seed=3)
    reply = client.store_model_output(output)
    assert reply.created
    entry = client.get_recording(r.id, include_model_outputs=True)
    assert [convert.model_output_from_proto(o) for o in entry.model_outputs] == [output]
    by_path = client.get_recordings_by_path([r.path], include_model_outputs=True)
    assert len(by_path.entries[0].model_outputs[0].detections) == 200
    assert len(by_path.entries[0].model_outputs[0].detections[7].tags) == 5


def test_a_redelivered_output_is_stored_once(client, deployment):
    r = factories.recording(deployment.id)
    client.store_recording(r)
    output = factories.model_output(r.id, n_detections=4)
    message = schema.Message(content='{"detections": 4}')
    assert client.store_model_output(output, [message]).created
    # The task ran again after a crash: a new output id, same recording and model.
    again = factories.model_output(r.id, n_detections=4, seed=9)
    reply = client.store_model_output(again, [schema.Message(content='{"detections": 4}')])
    assert not reply.created
    assert reply.model_output_id == str(output.id)
    assert len(client.list_detections()) == 4
    assert [m.id for m in client.get_unsent_messages()] == [str(message.id)]


def test_two_models_each_keep_their_output(client, deployment):
    r = factories.recording(deployment.id)
    client.store_recording(r)
    client.store_model_output(factories.model_output(r.id, model_name="batdetect2"))
    client.store_model_output(factories.model_output(r.id, model_name="energy"))
    entry = client.get_recording(r.id, include_model_outputs=True)
    assert sorted(o.model_name for o in entry.model_outputs) == ["batdetect2", "energy"]


def test_an_output_for_an_unknown_recording_is_not_found(client):
    with pytest.raises(NotFoundError, match="model_output.recording_id: no recording"):
        client.store_model_output(factories.model_output(uuid.uuid4()))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda o: setattr(o.detections[1], "detection_score", 1.5),
            "model_output.detections.1.detection_score: Input should be less than or equal to 1",
        ),
        (
            lambda o: setattr(o.detections[0].tags[2], "confidence", -0.1),
            "model_output.detections.0.tags.2.confidence: Input should be greater than or equal to 0",
        ),
        (
            lambda o: setattr(o.detections[2].box, "end_time_s", 0.0),
            "model_output.detections.2.box: Value error, end_time_s is before start_time_s",
        ),
        (
            lambda o: o.detections[0].ClearField("box"),
            "model_output.detections.0: Value error, a event detection needs a box",
        ),
        (lambda o: setattr(o, "model_name", ""), "model_output.model_name: Field required"),
    ],
)
def test_bad_outputs_are_refused_by_field_and_nothing_is_stored(
    client, deployment, mutate, message
):
    r = factories.recording(deployment.id)
    client.store_recording(r)
    proto = convert.model_output_to_proto(factories.model_output(r.id, n_detections=3))
    mutate(proto)
    with pytest.raises(InvalidArgumentError, match=message):
        client.store_model_output(proto, [schema.Message(content="x")])
    assert client.get_recording(r.id, include_model_outputs=True).model_outputs == []
    assert client.list_detections() == []
    assert client.get_unsent_messages() == []


def test_detection_queries_by_time_model_score_and_tag(client, deployment):
    early = factories.recording(deployment.id, started_at=T0)
    late = factories.recording(deployment.id, started_at=T0 + dt.timedelta(hours=1))
    for r in (early, late):
        client.store_recording(r)

    def det(score, species):
        return schema.Detection(
            box=schema.BoundingBox(
                start_time_s=0.1, end_time_s=0.2, low_freq_hz=20e3, high_freq_hz=50e3
            ),
            detection_score=score,
            tags=[
                schema.PredictedTag(tag=schema.Tag(key="species", value=species), confidence=score)
            ],
        )

    client.store_model_output(
        schema.ModelOutput(
            recording_id=early.id,
            model_name="batdetect2",
            detections=[det(0.9, "Myotis"), det(0.3, "Pipistrellus")],
        )
    )
    client.store_model_output(
        schema.ModelOutput(
            recording_id=late.id, model_name="batdetect2", detections=[det(0.7, "Myotis")]
        )
    )
    client.store_model_output(
        schema.ModelOutput(recording_id=late.id, model_name="energy", detections=[det(0.5, "bat")])
    )

    assert len(client.list_detections()) == 4
    assert len(client.list_detections(model_name="energy")) == 1
    in_first_hour = client.list_detections(started_from=T0, started_to=T0 + dt.timedelta(hours=1))
    assert sorted(h.detection.detection_score for h in in_first_hour) == pytest.approx([0.3, 0.9])
    confident = client.list_detections(min_score=0.6)
    assert sorted(h.detection.detection_score for h in confident) == pytest.approx([0.7, 0.9])
    band = client.list_detections(min_score=0.4, max_score=0.8)
    assert sorted(h.detection.detection_score for h in band) == pytest.approx([0.5, 0.7])
    myotis = client.list_detections(tag_key="species", tag_value="Myotis")
    assert {h.recording_id for h in myotis} == {str(early.id), str(late.id)}
    assert all(h.model_name == "batdetect2" for h in myotis)
    assert len(client.list_detections(tag_key="species")) == 4
    assert client.list_detections(tag_key="species", tag_value="Nyctalus") == []


def test_contradictory_detection_queries_are_refused(client):
    with pytest.raises(InvalidArgumentError, match="min_score: greater than max_score"):
        client.list_detections(min_score=0.9, max_score=0.1)
    with pytest.raises(InvalidArgumentError, match="tag_key: required when tag_value is given"):
        client.list_detections(tag_value="Myotis")


# --- outbox ---------------------------------------------------------------------------------


def test_a_message_stays_unsent_until_a_success(client):
    message = schema.Message(content='{"hello": 1}')
    assert client.store_message(message).created
    client.store_response(
        schema.Response(
            message_id=message.id, status=schema.ResponseStatus.ERROR, content="connection refused"
        )
    )
    client.store_response(
        schema.Response(
            message_id=message.id, status=schema.ResponseStatus.FAILED, content="HTTP 503"
        )
    )
    unsent = client.get_unsent_messages()
    assert [m.id for m in unsent] == [str(message.id)]
    assert unsent[0].attempts == 2
    client.store_response(
        schema.Response(
            message_id=message.id, status=schema.ResponseStatus.SUCCESS, content="HTTP 200"
        )
    )
    assert client.get_unsent_messages() == []
    responses = client.list_responses(message.id)
    assert [r.content for r in responses] == ["connection refused", "HTTP 503", "HTTP 200"]
    # Without a message: the newest responses of all, e.g. the last successful delivery.
    (last_sent,) = client.list_responses(status=schema.ResponseStatus.SUCCESS)
    assert (last_sent.message_id, last_sent.content) == (str(message.id), "HTTP 200")
    newest = client.list_responses(limit=2)
    assert [r.content for r in newest] == ["HTTP 200", "HTTP 503"]
    with pytest.raises(InvalidArgumentError, match="limit: 5000 is not within 0..1000"):
        client.list_responses(limit=5000)


def test_unsent_messages_come_oldest_or_newest_first_with_a_limit(client):
    messages = [
        schema.Message(content=f"m{i}", created_at=T0 + dt.timedelta(seconds=i)) for i in range(5)
    ]
    for m in reversed(messages):
        client.store_message(m)
    assert [m.content for m in client.get_unsent_messages(limit=3)] == ["m0", "m1", "m2"]
    assert [m.content for m in client.get_unsent_messages(limit=2, newest_first=True)] == [
        "m4",
        "m3",
    ]


def test_a_retried_message_is_stored_once(client):
    message = schema.Message(content="hello")
    client.store_message(message)
    assert not client.store_message(message).created
    with pytest.raises(AlreadyExistsError, match="message.id"):
        client.store_message(message.model_copy(update={"content": "other"}))
    assert len(client.get_unsent_messages()) == 1


def test_responses_need_a_known_message_and_a_status(client):
    with pytest.raises(NotFoundError, match="response.message_id: no message"):
        client.store_response(
            schema.Response(message_id=uuid.uuid4(), status=schema.ResponseStatus.SUCCESS)
        )
    message = schema.Message(content="x")
    client.store_message(message)
    with pytest.raises(InvalidArgumentError, match="response.status: Field required"):
        client.store_response(pb.Response(message_id=str(message.id)))
    with pytest.raises(InvalidArgumentError, match="message.content: Field required"):
        client.store_message(pb.Message(id=str(uuid.uuid4())))


def test_detections_come_in_pages_that_cover_every_hit_once(client, deployment):
    # Three recordings of 7 detections each (two of them at the same start): pages of 5, both
    # orders, give every detection once and in the listing's order.
    recordings = [
        factories.recording(deployment.id, started_at=T0 + dt.timedelta(minutes=m))
        for m in (0, 5, 5)
    ]
    for r in recordings:
        client.store_recording(r)
        client.store_model_output(
            schema.ModelOutput(
                recording_id=r.id,
                model_name="batdetect2",
                detections=[
                    schema.Detection(
                        box=schema.BoundingBox(
                            start_time_s=0.1 * (i % 4), end_time_s=0.5, low_freq_hz=2e4,
                            high_freq_hz=5e4,
                        ),
                        detection_score=0.5,
                    )
                    for i in range(7)
                ],
            )
        )  # fmt: skip
    for order in (spb.SORT_ORDER_NEWEST_FIRST, spb.SORT_ORDER_OLDEST_FIRST):
        everything = client.list_detections(order=order, limit=100)
        assert len(everything) == 21
        paged, token, pages = [], "", 0
        while True:
            hits, token = client.list_detections_page(order=order, limit=5, page_token=token)
            paged.extend(hits)
            pages += 1
            if not token:
                break
        assert pages == 5
        assert [h.detection.id for h in paged] == [h.detection.id for h in everything]
    # The last page's size exactly: no token for a page with nothing after it.
    hits, token = client.list_detections_page(limit=21)
    assert len(hits) == 21 and token == ""


def test_a_page_token_the_store_never_gave_is_refused_by_name(client):
    with pytest.raises(InvalidArgumentError, match="page_token"):
        client.list_detections(page_token="not-a-token")


def test_detections_are_counted_per_hour_and_per_day_per_species(client, deployment):
    def output_of(recording, species_counts):
        detections = []
        for species, count in species_counts.items():
            for _ in range(count):
                detections.append(
                    schema.Detection(
                        box=schema.BoundingBox(
                            start_time_s=0.1, end_time_s=0.2, low_freq_hz=2e4, high_freq_hz=5e4
                        ),
                        detection_score=0.8,
                        tags=[
                            schema.PredictedTag(tag=schema.Tag(key="species", value=species),
                                                confidence=0.7),
                            # A less confident second guess: the detection counts once.
                            schema.PredictedTag(tag=schema.Tag(key="species", value="Other"),
                                                confidence=0.2),
                        ],
                    )
                )  # fmt: skip
        return schema.ModelOutput(
            recording_id=recording.id, model_name="batdetect2", detections=detections
        )

    night = dt.datetime(2026, 6, 1, 22, 10, tzinfo=dt.UTC)
    plan = [
        (night, {"Myotis": 3, "Pipistrellus": 1}),
        (night + dt.timedelta(minutes=20), {"Myotis": 2}),
        (night + dt.timedelta(hours=2), {"Pipistrellus": 4}),  # 00:10 UTC, 01:10 in London
        (night + dt.timedelta(days=1), {"Myotis": 1}),
    ]
    for started_at, counts in plan:
        recording = factories.recording(deployment.id, started_at=started_at)
        client.store_recording(recording)
        client.store_model_output(output_of(recording, counts))

    def counts(**kwargs):
        request = spb.CountDetectionsRequest(
            started_from=convert.timestamp(night - dt.timedelta(hours=1)),
            started_to=convert.timestamp(night + dt.timedelta(days=2)),
            **kwargs,
        )
        reply = client.stub.CountDetections(request, timeout=10)
        return [(c.bucket_start.ToDatetime(tzinfo=dt.UTC), c.tag_value, c.detections)
                for c in reply.counts]  # fmt: skip

    hour = dt.timedelta(hours=1)
    base = night.replace(minute=0)
    assert counts(bucket=spb.TIME_BUCKET_HOUR) == [
        (base, "Myotis", 5), (base, "Pipistrellus", 1),
        (base + 2 * hour, "Pipistrellus", 4), (base + 24 * hour, "Myotis", 1),
    ]  # fmt: skip
    # Days in London: 23:10 and 01:10 local fall on two dates; bucket starts are local midnights.
    by_day = counts(bucket=spb.TIME_BUCKET_DAY, time_zone="Europe/London")
    midnight = dt.datetime(2026, 6, 1, 23, 0, tzinfo=dt.UTC)  # 2026-06-02 00:00 BST
    assert by_day == [
        (midnight - 24 * hour, "Myotis", 5), (midnight - 24 * hour, "Pipistrellus", 1),
        (midnight, "Myotis", 1), (midnight, "Pipistrellus", 4),
    ]  # fmt: skip


def test_counting_refuses_what_it_cannot_count_by_name(client):
    def refused(**kwargs):
        request = spb.CountDetectionsRequest(**kwargs)
        with pytest.raises(grpc.RpcError) as caught:
            client.stub.CountDetections(request, timeout=10)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        return caught.value.details()

    t0 = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    assert "started_from" in refused()
    span = {"started_from": convert.timestamp(t0)}
    assert "time_zone" in refused(**span, started_to=convert.timestamp(t0 + dt.timedelta(days=1)),
                                  time_zone="Mars/Olympus")  # fmt: skip
    # A huge name (the fuzzer's: zoneinfo recursed on it) is refused too, quoted short.
    huge = refused(**span, started_to=convert.timestamp(t0 + dt.timedelta(days=1)),
                   time_zone="Europe/London" * 5000)  # fmt: skip
    assert "time_zone" in huge and len(huge) < 2000
    assert "31 days" in refused(**span, started_to=convert.timestamp(t0 + dt.timedelta(days=60)))
    assert "started_to" in refused(**span, started_to=convert.timestamp(t0))


def test_a_retention_plan_request_with_a_bad_section_is_refused_by_field(client):
    def refused(**kwargs):
        with pytest.raises(grpc.RpcError) as caught:
            client.stub.GetRetentionPlan(spb.GetRetentionPlanRequest(**kwargs), timeout=10)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        return caught.value.details()

    assert "file_management_json" in refused(file_management_json="{not json")
    assert "file_management_json" in refused(file_management_json="[1]")
    assert "retention_days" in refused(file_management_json='{"retention_days": -3}')
    assert "limit" in refused(limit=5000)
    # No section: the shipped defaults, which hold a free-space floor (nothing saved to delete).
    reply = client.stub.GetRetentionPlan(spb.GetRetentionPlanRequest(), timeout=10)
    assert reply.enabled and list(reply.next) == []
    off = client.stub.GetRetentionPlan(
        spb.GetRetentionPlanRequest(file_management_json='{"keep_free_mb": 0}'), timeout=10
    )
    assert not off.enabled and list(off.next) == []
