"""Rows already stored that the read side refuses: migration 0003 repairs them (keeping what it
replaced), and a listing never fails because of one: it skips the row with a warning naming it."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import grpc
import psycopg
import pytest

from acoustack.testing import factories
from acoustack.v1 import store_pb2 as spb
from acoustack.v1 import types_pb2 as pb
from acoustack_storage.migrate import apply_migrations, bundled_migrations
from acoustack_storage.repair import PLACEHOLDER_DIR

T0 = dt.datetime(2026, 6, 1, 21, 0, tzinfo=dt.UTC)
LONG_PATH = "/rec/" + "x" * 1195


def insert_recording(conn, deployment_id, **values) -> uuid.UUID:
    row = {
        "id": uuid.uuid4(),
        "deployment_id": deployment_id,
        "device_id": "device-1",
        "source_id": "mic-0",
        "path": f"/rec/{uuid.uuid4()}.wav",
        "started_at": T0,
        "duration_s": 3.0,
        "capture_samplerate_hz": 384_000,
        "channels": 1,
        "time_expansion": 1.0,
        "status": "temporary",
        "failure_reason": "",
        "created_at": T0,
        **values,
    }
    columns = ", ".join(row)
    conn.execute(
        f"INSERT INTO recordings ({columns}) VALUES ({', '.join(['%s'] * len(row))})",
        tuple(row.values()),
    )
    return row["id"]


@pytest.fixture
def old_database(empty_database_url):
    """A database at migration 0002 holding rows an older store let in, as raw SQL puts them."""
    with psycopg.connect(empty_database_url) as conn:
        apply_migrations(conn, [m for m in bundled_migrations() if m.version <= 2])
        active = uuid.uuid4()
        ended = uuid.uuid4()
        conn.execute(
            "INSERT INTO deployments (id, name, started_at) VALUES (%s, 'meadow', %s)", (active, T0)
        )
        conn.execute(
            """INSERT INTO deployments (id, name, started_at, ended_at)
               VALUES (%s, %s, '1850-03-01 00:00+00', '12000-01-01 00:00+00')""",
            (ended, "hedge\x1b" + "x" * 250),
        )
        rows = {
            "good": insert_recording(conn, active),
            "long path": insert_recording(conn, active, path=LONG_PATH),
            "deleted long path": insert_recording(conn, active, path=LONG_PATH, status="deleted"),
            "bell in device": insert_recording(conn, active, device_id="dev\x07ice"),
            "tab in path": insert_recording(conn, active, path="/rec/a\tb.wav"),
            "far future": insert_recording(conn, active, started_at="infinity"),
            "negative duration": insert_recording(conn, active, duration_s=-5.0),
        }
        message = uuid.uuid4()
        conn.execute(
            """INSERT INTO messages (id, content, created_at)
               VALUES (%s, %s, '0500-01-01 00:00+00')""",
            (message, '{"a": 1}\x01'),
        )
        conn.execute(
            """INSERT INTO responses (message_id, status, content, received_at)
               VALUES (%s, 'failed', %s, %s)""",
            (message, "r" * 100_500, T0),
        )
    yield empty_database_url, active, ended, rows, message


def test_migration_0003_repairs_what_the_read_side_refuses_and_keeps_the_originals(
    old_database, caplog
):
    url, active, ended, rows, message = old_database
    with psycopg.connect(url) as conn, caplog.at_level(logging.WARNING):
        assert apply_migrations(conn)[0] == 3  # the later ones are not about old rows

    from acoustack.clients import StoreClient
    from acoustack.grpc_server import start_server
    from acoustack_storage.repository import PostgresStore
    from acoustack_storage.servicer import StoreServicer, register

    store = PostgresStore.open(url, timeout_s=2.0)
    server = start_server([register(StoreServicer(store))], address="127.0.0.1:0")
    try:
        client = StoreClient(f"127.0.0.1:{server.port}")
        listed = {e.recording.id: e.recording for e in client.list_recordings(limit=100)}
        # Every row but the one nothing can repair reads back, one by one and in the listing.
        assert set(listed) == {str(rows[k]) for k in rows if k != "negative duration"}
        for key in set(rows) - {"negative duration"}:
            assert client.get_recording(rows[key]).recording == listed[str(rows[key])]

        moved = listed[str(rows["long path"])]
        assert moved.path == f"{PLACEHOLDER_DIR}/{rows['long path']}"
        assert moved.status == pb.RECORDING_STATUS_FAILED
        assert moved.failure_reason.startswith(
            "its stored path could not be read back (String should have at most 1000 characters "
            "(it has 1200))"
        )
        kept_deleted = listed[str(rows["deleted long path"])]
        assert kept_deleted.status == pb.RECORDING_STATUS_DELETED  # stays deleted: not live again
        assert listed[str(rows["bell in device"])].device_id == "dev\ufffdice"
        assert listed[str(rows["tab in path"])].status == pb.RECORDING_STATUS_FAILED
        far = listed[str(rows["far future"])].started_at.ToDatetime(tzinfo=dt.UTC)
        assert far == dt.datetime(2999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)

        hedge = client.get_deployment(ended)
        assert hedge.name == ("hedge\ufffd" + "x" * 250)[:200]
        assert hedge.started_at.ToDatetime(tzinfo=dt.UTC) == dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
        assert client.current_deployment().id == str(active)

        (unsent,) = client.get_unsent_messages()
        assert (unsent.id, unsent.content) == (str(message), '{"a": 1}\ufffd')
        (response,) = client.list_responses(message)
        assert len(response.content) == 100_000

        # The one left as it was: a read by id says so; listings skip it.
        with pytest.raises(grpc.RpcError) as lost:
            client.stub.GetRecording(
                spb.GetRecordingRequest(recording_id=str(rows["negative duration"])), timeout=10
            )
        assert lost.value.code() is grpc.StatusCode.DATA_LOSS
        assert f"recordings row {rows['negative duration']} cannot be read back" in (
            lost.value.details()
        )
    finally:
        server.stop(0)
        store.close()

    with psycopg.connect(url) as conn:
        quarantined = conn.execute(
            """SELECT table_name, row_id, column_name, original_value FROM quarantined_values
               ORDER BY id"""
        ).fetchall()
    originals = {(t, r, c): v for t, r, c, v in quarantined}
    assert originals[("recordings", str(rows["long path"]), "path")] == LONG_PATH
    assert originals[("recordings", str(rows["long path"]), "status")] == "temporary"
    assert originals[("recordings", str(rows["bell in device"]), "device_id")] == "dev\x07ice"
    assert originals[("recordings", str(rows["far future"]), "started_at")] == "infinity"
    assert originals[("deployments", str(ended), "name")] == "hedge\x1b" + "x" * 250
    assert originals[("deployments", str(ended), "ended_at")].startswith("12000-01-01")
    assert originals[("messages", str(message), "content")] == '{"a": 1}\x01'
    assert originals[("recordings", str(rows["negative duration"]), None)] is None
    assert (
        f"recordings row {rows['negative duration']} cannot be read back and cannot be repaired: "
        "duration_s: Input should be greater than or equal to 0"
    ) in caplog.messages


def test_the_migration_changes_nothing_on_a_clean_database(database_url):
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM quarantined_values").fetchone() == (0,)


# --- a bad row written after the migration (by hand, or a bug): listings skip it ------------


@pytest.fixture
def bad_row(client, deployment, database_url):
    good = factories.recording(deployment.id, started_at=T0)
    client.store_recording(good)
    client.store_model_output(factories.model_output(good.id, n_detections=2))
    with psycopg.connect(database_url) as conn:
        bad = insert_recording(
            conn, deployment.id, path=LONG_PATH, started_at=T0 + dt.timedelta(minutes=1)
        )
        # A stored output whose document does not parse, on the good recording's sibling.
        broken = factories.recording(deployment.id, started_at=T0 + dt.timedelta(minutes=2))
        client.store_recording(broken)
        output = factories.model_output(broken.id, n_detections=1, model_name="energy")
        client.store_model_output(output)
        conn.execute(
            "UPDATE model_outputs SET document = %s WHERE id = %s", (b"\x0a\xff", output.id)
        )
    return good, bad, broken, output


def test_a_bad_row_never_fails_a_listing_and_the_warning_names_it(
    client, deployment, bad_row, caplog
):
    good, bad, broken, output = bad_row
    with caplog.at_level(logging.WARNING):
        everything = client.list_recordings(include_model_outputs=True)
        of_deployment = client.list_recordings(deployment_id=str(deployment.id))
        by_path = client.get_recordings_by_path([good.path, broken.path])
        hits = client.list_detections()
    assert [e.recording.id for e in everything] == [str(good.id), str(broken.id)]
    assert [e.recording.id for e in of_deployment] == [str(good.id), str(broken.id)]
    assert len(everything[0].model_outputs) == 1
    assert list(everything[1].model_outputs) == []  # its only output does not parse
    assert {e.recording.id for e in by_path.entries} == {str(good.id), str(broken.id)}
    assert {h.recording_id for h in hits} == {str(good.id)}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"skipping recordings row {bad}: it cannot be read back" in w for w in warnings)
    assert any(f"skipping model_outputs row {output.id}" in w for w in warnings)
    assert any(f"recording {broken.id}: skipping its model output 0" in w for w in warnings)


def test_a_bad_row_asked_for_by_id_is_data_loss_naming_it(client, bad_row):
    _, bad, _, _ = bad_row
    with pytest.raises(grpc.RpcError) as info:
        client.stub.GetRecording(spb.GetRecordingRequest(recording_id=str(bad)), timeout=10)
    assert info.value.code() is grpc.StatusCode.DATA_LOSS
    assert info.value.details().startswith(
        f"recordings row {bad} cannot be read back: path: String should have at most 1000 "
        "characters (it has 1200)"
    )
