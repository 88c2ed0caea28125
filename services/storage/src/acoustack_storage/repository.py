"""The store's domain logic on Postgres: no gRPC in here, so it is tested against a database alone.

Every public method is one transaction. Database trouble becomes UnavailableError (retry later);
bad requests become the typed errors of acoustack.errors, each naming the field or id at fault.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
import psycopg_pool
from acoustack import convert, schema
from acoustack.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from acoustack.v1 import types_pb2 as pb
from psycopg import errors as pg_errors
from psycopg.rows import dict_row

log = logging.getLogger(__name__)

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 100


def effective_limit(limit: int) -> int:
    if limit < 0 or limit > MAX_LIMIT:
        raise InvalidArgumentError(
            f"limit: must be between 1 and {MAX_LIMIT} (0 means {DEFAULT_LIMIT})"
        )
    return limit or DEFAULT_LIMIT


@dataclass
class StoredRecording:
    """A recording with the outputs of the models that processed it (kept in their wire form)."""

    recording: schema.Recording
    model_outputs: list[pb.ModelOutput] = field(default_factory=list)


@dataclass(frozen=True)
class RecordingFilter:
    deployment_id: uuid.UUID | None = None
    statuses: tuple[schema.RecordingStatus, ...] = ()
    started_from: dt.datetime | None = None
    started_to: dt.datetime | None = None
    limit: int = DEFAULT_LIMIT
    newest_first: bool = False


@dataclass(frozen=True)
class DetectionFilter:
    started_from: dt.datetime | None = None
    started_to: dt.datetime | None = None
    model_name: str = ""
    min_score: float | None = None
    max_score: float | None = None
    tag_key: str = ""
    tag_value: str = ""
    deployment_id: uuid.UUID | None = None
    limit: int = DEFAULT_LIMIT
    newest_first: bool = False


@dataclass(frozen=True)
class DetectionHit:
    detection: schema.Detection
    recording_id: uuid.UUID
    model_output_id: uuid.UUID
    model_name: str
    recording_started_at: dt.datetime


_DEPLOYMENT_COLUMNS = "id, name, latitude, longitude, started_at, ended_at"
_RECORDING_COLUMNS = (
    "id, deployment_id, device_id, source_id, path, started_at, duration_s, capture_samplerate_hz, "
    "channels, time_expansion, status, failure_reason, created_at"
)
_MESSAGE_COLUMNS = "id, content, created_at, priority, attempts, last_attempt_at"


def _deployment(row: dict) -> schema.Deployment:
    return schema.Deployment.model_validate(row)


def _recording(row: dict) -> schema.Recording:
    return schema.Recording.model_validate(row)


class PostgresStore:
    def __init__(self, pool: psycopg_pool.ConnectionPool) -> None:
        self._pool = pool

    @classmethod
    def open(
        cls, url: str, *, min_size: int = 1, max_size: int = 8, timeout_s: float = 5.0
    ) -> PostgresStore:
        pool = psycopg_pool.ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout_s,
            # Keep trying to reconnect for as long as the service lives: the database may be
            # restarted under us on a device, and requests meanwhile get UNAVAILABLE.
            reconnect_timeout=365 * 24 * 3600,
            check=psycopg_pool.ConnectionPool.check_connection,
            kwargs={"options": "-c timezone=UTC", "connect_timeout": max(1, int(timeout_s))},
            open=False,
            name="storage",
        )
        pool.open(wait=False)
        return cls(pool)

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection]:
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.row_factory = dict_row
                yield conn
        except psycopg_pool.PoolTimeout as exc:
            raise UnavailableError(
                f"the database cannot be reached: {exc}", help="check that Postgres is running"
            ) from None
        except psycopg.OperationalError as exc:
            raise UnavailableError(
                f"the database connection failed: {str(exc).strip()}",
                help="check that Postgres is running",
            ) from None

    def ping(self) -> bool:
        try:
            with self._tx() as conn:
                conn.execute("SELECT 1")
            return True
        except UnavailableError:
            return False

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A raw connection in a transaction (migrations, tests)."""
        with self._tx() as conn:
            conn.row_factory = psycopg.rows.tuple_row
            yield conn

    # --- deployments ------------------------------------------------------------------------

    def start_deployment(self, deployment: schema.Deployment) -> schema.Deployment:
        if deployment.ended_at is not None:
            raise InvalidArgumentError(
                "ended_at: a deployment starts active; end it with EndDeployment"
            )
        try:
            with self._tx() as conn:
                row = conn.execute(
                    f"""INSERT INTO deployments ({_DEPLOYMENT_COLUMNS})
                        VALUES (%s, %s, %s, %s, %s, NULL)
                        ON CONFLICT (id) DO NOTHING RETURNING {_DEPLOYMENT_COLUMNS}""",
                    (
                        deployment.id,
                        deployment.name,
                        deployment.latitude,
                        deployment.longitude,
                        deployment.started_at,
                    ),
                ).fetchone()
                if row is not None:
                    return _deployment(row)
                existing = _deployment(
                    conn.execute(
                        f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments WHERE id = %s",
                        (deployment.id,),
                    ).fetchone()
                )
        except pg_errors.UniqueViolation:
            active = self.current_deployment()
            what = f"'{active.name}' ({active.id}), active since {active.started_at:%Y-%m-%d %H:%M} UTC"
            raise FailedPreconditionError(
                f"deployment {what} is still active",
                help="end it before starting another: one deployment is active at a time",
            ) from None
        same = (existing.name, existing.latitude, existing.longitude) == (
            deployment.name,
            deployment.latitude,
            deployment.longitude,
        )
        if not same:
            raise AlreadyExistsError(f"id: deployment {deployment.id} exists with other values")
        return existing  # a retried start

    def end_deployment(self, deployment_id: uuid.UUID, ended_at: dt.datetime) -> schema.Deployment:
        with self._tx() as conn:
            row = conn.execute(
                f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments WHERE id = %s FOR UPDATE",
                (deployment_id,),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"deployment_id: no deployment {deployment_id}")
            current = _deployment(row)
            if current.ended_at is not None:
                return current  # already ended: a retried stop changes nothing
            if ended_at < current.started_at:
                raise InvalidArgumentError(
                    f"ended_at: {ended_at.isoformat()} is before the deployment started "
                    f"({current.started_at.isoformat()})"
                )
            row = conn.execute(
                f"UPDATE deployments SET ended_at = %s WHERE id = %s RETURNING {_DEPLOYMENT_COLUMNS}",
                (ended_at, deployment_id),
            ).fetchone()
            return _deployment(row)

    def current_deployment(self) -> schema.Deployment | None:
        with self._tx() as conn:
            row = conn.execute(
                f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments WHERE ended_at IS NULL"
            ).fetchone()
        return _deployment(row) if row else None

    def get_deployment(self, deployment_id: uuid.UUID) -> schema.Deployment:
        with self._tx() as conn:
            row = conn.execute(
                f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments WHERE id = %s", (deployment_id,)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"deployment_id: no deployment {deployment_id}")
        return _deployment(row)

    # --- recordings -------------------------------------------------------------------------

    def store_recording(self, recording: schema.Recording) -> tuple[schema.Recording, bool]:
        """Store a new recording; storing the same one again (a retried registration) is a no-op."""
        r = recording
        try:
            with self._tx() as conn:
                row = conn.execute(
                    f"""INSERT INTO recordings ({_RECORDING_COLUMNS})
                        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                        ON CONFLICT (id) DO NOTHING RETURNING {_RECORDING_COLUMNS}""",
                    (
                        r.id,
                        r.deployment_id,
                        r.device_id,
                        r.source_id,
                        r.path,
                        r.started_at,
                        r.duration_s,
                        r.capture_samplerate_hz,
                        r.channels,
                        r.time_expansion,
                        r.status.value,
                        r.failure_reason,
                        r.created_at,
                    ),
                ).fetchone()
                if row is not None:
                    return _recording(row), True
                existing = _recording(
                    conn.execute(
                        f"SELECT {_RECORDING_COLUMNS} FROM recordings WHERE id = %s", (r.id,)
                    ).fetchone()
                )
        except pg_errors.ForeignKeyViolation:
            raise NotFoundError(
                f"recording.deployment_id: no deployment {r.deployment_id}",
                help="start a deployment first and use its id",
            ) from None
        except pg_errors.UniqueViolation:
            owner = self._live_recording_id_at(r.path)
            raise AlreadyExistsError(
                f"recording.path: {r.path} already belongs to recording {owner}",
                help="every recording needs its own file name",
            ) from None
        identity = ("deployment_id", "device_id", "source_id", "path", "started_at", "duration_s")
        if any(getattr(existing, k) != getattr(r, k) for k in identity):
            raise AlreadyExistsError(
                f"recording.id: recording {r.id} was already stored with other values "
                f"(path {existing.path})"
            )
        return existing, False

    def _live_recording_id_at(self, path: str) -> uuid.UUID | None:
        with self._tx() as conn:
            row = conn.execute(
                "SELECT id FROM recordings WHERE path = %s AND status <> 'deleted'", (path,)
            ).fetchone()
        return row["id"] if row else None

    def _attach_outputs(
        self, conn: psycopg.Connection, recordings: list[schema.Recording]
    ) -> list[StoredRecording]:
        entries = {r.id: StoredRecording(r) for r in recordings}
        if entries:
            rows = conn.execute(
                """SELECT recording_id, document FROM model_outputs
                   WHERE recording_id = ANY(%s) ORDER BY created_at, id""",
                (list(entries),),
            ).fetchall()
            for row in rows:
                entries[row["recording_id"]].model_outputs.append(
                    pb.ModelOutput.FromString(row["document"])
                )
        return list(entries.values())

    def get_recording(
        self, recording_id: uuid.UUID, *, include_model_outputs: bool = False
    ) -> StoredRecording:
        with self._tx() as conn:
            row = conn.execute(
                f"SELECT {_RECORDING_COLUMNS} FROM recordings WHERE id = %s", (recording_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"recording_id: no recording {recording_id}")
            recordings = [_recording(row)]
            if include_model_outputs:
                return self._attach_outputs(conn, recordings)[0]
        return StoredRecording(recordings[0])

    def get_recordings_by_path(
        self, paths: Sequence[str], *, include_model_outputs: bool = True
    ) -> tuple[list[StoredRecording], list[str]]:
        """The recordings at these paths (live ones first), and the paths no recording has."""
        if len(paths) > MAX_LIMIT:
            raise InvalidArgumentError(f"paths: at most {MAX_LIMIT} per request")
        with self._tx() as conn:
            rows = conn.execute(
                f"""SELECT {_RECORDING_COLUMNS} FROM recordings WHERE path = ANY(%s)
                    ORDER BY (status = 'deleted'), started_at, id""",
                (list(paths),),
            ).fetchall()
            recordings = [_recording(row) for row in rows]
            entries = (
                self._attach_outputs(conn, recordings)
                if include_model_outputs
                else [StoredRecording(r) for r in recordings]
            )
        found = {e.recording.path for e in entries}
        return entries, [p for p in paths if p not in found]

    def list_recordings(
        self, query: RecordingFilter, *, include_model_outputs: bool = False
    ) -> list[StoredRecording]:
        where, params = [], []
        if query.deployment_id is not None:
            where.append("deployment_id = %s")
            params.append(query.deployment_id)
        if query.statuses:
            where.append("status = ANY(%s)")
            params.append([s.value for s in query.statuses])
        if query.started_from is not None:
            where.append("started_at >= %s")
            params.append(query.started_from)
        if query.started_to is not None:
            where.append("started_at < %s")
            params.append(query.started_to)
        order = "DESC" if query.newest_first else "ASC"
        sql = f"SELECT {_RECORDING_COLUMNS} FROM recordings"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY started_at {order}, id {order} LIMIT %s"
        params.append(effective_limit(query.limit))
        with self._tx() as conn:
            recordings = [_recording(row) for row in conn.execute(sql, params).fetchall()]
            if include_model_outputs:
                return self._attach_outputs(conn, recordings)
        return [StoredRecording(r) for r in recordings]

    def _update_recording(
        self, recording_id: uuid.UUID, assignments: str, params: tuple
    ) -> schema.Recording:
        try:
            with self._tx() as conn:
                row = conn.execute(
                    f"""UPDATE recordings SET {assignments}, updated_at = now() WHERE id = %s
                        RETURNING {_RECORDING_COLUMNS}""",
                    (*params, recording_id),
                ).fetchone()
        except pg_errors.UniqueViolation:
            raise AlreadyExistsError(
                f"path: {params[0]} already belongs to another recording"
            ) from None
        if row is None:
            raise NotFoundError(f"recording_id: no recording {recording_id}")
        return _recording(row)

    def update_recording_path(
        self, recording_id: uuid.UUID, path: str, status: schema.RecordingStatus | None = None
    ) -> schema.Recording:
        if not path:
            raise InvalidArgumentError("path: required (the recording's new place)")
        if status is None:
            return self._update_recording(recording_id, "path = %s", (path,))
        return self._update_recording(recording_id, "path = %s, status = %s", (path, status.value))

    def mark_recording_failed(self, recording_id: uuid.UUID, reason: str) -> schema.Recording:
        if not reason.strip():
            raise InvalidArgumentError("reason: say why the recording failed")
        return self._update_recording(
            recording_id, "status = 'failed', failure_reason = %s", (reason[:2000],)
        )

    def mark_recording_deleted(self, recording_id: uuid.UUID) -> schema.Recording:
        return self._update_recording(recording_id, "status = 'deleted'", ())

    # --- model outputs ----------------------------------------------------------------------

    def store_model_output(
        self, output: schema.ModelOutput, messages: Sequence[schema.Message] = ()
    ) -> tuple[pb.ModelOutput, bool]:
        """Store an output, its detections and its messages in one transaction.

        Idempotent per (recording, model name): a second output of the same model for the same
        recording (a redelivered detection task) stores nothing and returns the first one.
        """
        document = convert.model_output_to_proto(output)
        try:
            with self._tx() as conn:
                rec = conn.execute(
                    "SELECT started_at, deployment_id FROM recordings WHERE id = %s",
                    (output.recording_id,),
                ).fetchone()
                if rec is None:
                    raise NotFoundError(
                        f"model_output.recording_id: no recording {output.recording_id}"
                    )
                inserted = conn.execute(
                    """INSERT INTO model_outputs
                           (id, recording_id, model_name, model_version, created_at, document)
                       VALUES (%s, %s, %s, %s, %s, %s)
                       ON CONFLICT (recording_id, model_name) DO NOTHING RETURNING id""",
                    (
                        output.id,
                        output.recording_id,
                        output.model_name,
                        output.model_version,
                        output.created_at,
                        document.SerializeToString(),
                    ),
                ).fetchone()
                if inserted is None:
                    row = conn.execute(
                        """SELECT document FROM model_outputs
                           WHERE recording_id = %s AND model_name = %s""",
                        (output.recording_id, output.model_name),
                    ).fetchone()
                    return pb.ModelOutput.FromString(row["document"]), False
                self._copy_detections(conn, output, rec["started_at"], rec["deployment_id"])
                self._insert_messages(conn, messages, output.id)
        except pg_errors.UniqueViolation as exc:
            what = (
                "model_output.id"
                if "model_outputs_pkey" in str(exc)
                else "a detection or message id"
            )
            raise AlreadyExistsError(f"{what} is already used by another record") from None
        return document, True

    @staticmethod
    def _copy_detections(
        conn: psycopg.Connection,
        output: schema.ModelOutput,
        started_at: dt.datetime,
        deployment_id: uuid.UUID,
    ) -> None:
        if not output.detections:
            return
        columns = (
            "id, model_output_id, recording_id, recording_started_at, deployment_id, model_name, "
            "prediction_type, start_time_s, end_time_s, low_freq_hz, high_freq_hz, "
            "detection_score, tags"
        )
        with conn.cursor().copy(f"COPY detections ({columns}) FROM STDIN") as copy:
            for d in output.detections:
                box = d.box
                tags = json.dumps(
                    [
                        {"key": t.tag.key, "value": t.tag.value, "confidence": t.confidence}
                        for t in d.tags
                    ]
                )
                copy.write_row(
                    (
                        d.id,
                        output.id,
                        output.recording_id,
                        started_at,
                        deployment_id,
                        output.model_name,
                        d.prediction_type.value,
                        box.start_time_s if box else None,
                        box.end_time_s if box else None,
                        box.low_freq_hz if box else None,
                        box.high_freq_hz if box else None,
                        d.detection_score,
                        tags,
                    )
                )

    @staticmethod
    def _insert_messages(
        conn: psycopg.Connection,
        messages: Sequence[schema.Message],
        model_output_id: uuid.UUID | None,
    ) -> None:
        if not messages:
            return
        with conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO messages (id, content, created_at, priority, model_output_id)
                   VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING""",
                [(m.id, m.content, m.created_at, m.priority, model_output_id) for m in messages],
            )

    def list_detections(self, query: DetectionFilter) -> list[DetectionHit]:
        where, params = [], []
        if query.started_from is not None:
            where.append("recording_started_at >= %s")
            params.append(query.started_from)
        if query.started_to is not None:
            where.append("recording_started_at < %s")
            params.append(query.started_to)
        if query.model_name:
            where.append("model_name = %s")
            params.append(query.model_name)
        if query.deployment_id is not None:
            where.append("deployment_id = %s")
            params.append(query.deployment_id)
        if query.min_score is not None:
            where.append("detection_score >= %s")
            params.append(query.min_score)
        if query.max_score is not None:
            where.append("detection_score <= %s")
            params.append(query.max_score)
        if query.tag_value and not query.tag_key:
            raise InvalidArgumentError("tag_key: required when tag_value is given")
        if query.tag_key:
            wanted = {"key": query.tag_key}
            if query.tag_value:
                wanted["value"] = query.tag_value
            where.append("tags @> %s::jsonb")
            params.append(json.dumps([wanted]))
        if (
            query.min_score is not None
            and query.max_score is not None
            and query.min_score > query.max_score
        ):
            raise InvalidArgumentError("min_score: greater than max_score, so nothing could match")
        order = "DESC" if query.newest_first else "ASC"
        sql = (
            "SELECT id, model_output_id, recording_id, recording_started_at, model_name, "
            "prediction_type, start_time_s, end_time_s, low_freq_hz, high_freq_hz, "
            "detection_score, tags FROM detections"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY recording_started_at {order}, start_time_s {order}, id LIMIT %s"
        params.append(effective_limit(query.limit))
        with self._tx() as conn:
            rows = conn.execute(sql, params).fetchall()
        hits = []
        for row in rows:
            box = None
            if row["start_time_s"] is not None:
                box = {
                    k: row[k] for k in ("start_time_s", "end_time_s", "low_freq_hz", "high_freq_hz")
                }
            detection = schema.Detection.model_validate(
                {
                    "id": row["id"],
                    "prediction_type": row["prediction_type"],
                    "box": box,
                    "detection_score": row["detection_score"],
                    "tags": [
                        {
                            "tag": {"key": t["key"], "value": t["value"]},
                            "confidence": t["confidence"],
                        }
                        for t in row["tags"]
                    ],
                }
            )
            hits.append(
                DetectionHit(
                    detection,
                    row["recording_id"],
                    row["model_output_id"],
                    row["model_name"],
                    row["recording_started_at"],
                )
            )
        return hits

    # --- outbox -----------------------------------------------------------------------------

    def store_message(self, message: schema.Message) -> tuple[schema.Message, bool]:
        with self._tx() as conn:
            row = conn.execute(
                f"""INSERT INTO messages (id, content, created_at, priority) VALUES (%s, %s, %s, %s)
                    ON CONFLICT (id) DO NOTHING RETURNING {_MESSAGE_COLUMNS}""",
                (message.id, message.content, message.created_at, message.priority),
            ).fetchone()
            if row is not None:
                return schema.Message.model_validate(row), True
            row = conn.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = %s", (message.id,)
            ).fetchone()
        existing = schema.Message.model_validate(row)
        if existing.content != message.content:
            raise AlreadyExistsError(f"message.id: message {message.id} exists with other content")
        return existing, False

    def get_unsent_messages(
        self, limit: int, *, newest_first: bool = False
    ) -> list[schema.Message]:
        order = "DESC" if newest_first else "ASC"
        with self._tx() as conn:
            rows = conn.execute(
                f"""SELECT {_MESSAGE_COLUMNS} FROM messages WHERE sent_at IS NULL
                    ORDER BY priority DESC, created_at {order}, id LIMIT %s""",
                (effective_limit(limit),),
            ).fetchall()
        return [schema.Message.model_validate(row) for row in rows]

    def store_response(self, response: schema.Response) -> None:
        with self._tx() as conn:
            updated = conn.execute(
                """UPDATE messages SET
                       attempts = attempts + 1,
                       last_attempt_at = GREATEST(last_attempt_at, %(at)s),
                       sent_at = CASE WHEN %(ok)s THEN COALESCE(sent_at, %(at)s) ELSE sent_at END
                   WHERE id = %(id)s RETURNING id""",
                {
                    "at": response.received_at,
                    "ok": response.status is schema.ResponseStatus.SUCCESS,
                    "id": response.message_id,
                },
            ).fetchone()
            if updated is None:
                raise NotFoundError(f"response.message_id: no message {response.message_id}")
            conn.execute(
                """INSERT INTO responses (message_id, status, content, received_at)
                   VALUES (%s, %s, %s, %s)""",
                (
                    response.message_id,
                    response.status.value,
                    response.content,
                    response.received_at,
                ),
            )

    def list_responses(self, message_id: uuid.UUID) -> list[schema.Response]:
        with self._tx() as conn:
            exists = conn.execute("SELECT 1 FROM messages WHERE id = %s", (message_id,)).fetchone()
            if exists is None:
                raise NotFoundError(f"message_id: no message {message_id}")
            rows = conn.execute(
                """SELECT message_id, status, content, received_at FROM responses
                   WHERE message_id = %s ORDER BY received_at, id""",
                (message_id,),
            ).fetchall()
        return [schema.Response.model_validate(row) for row in rows]
