"""The store's domain logic on Postgres: no gRPC in here, so it is tested against a database alone.

Every public method is one transaction. Database trouble becomes UnavailableError (retry later);
bad requests become the typed errors of acoustack.errors, each naming the field or id at fault.

What is written is checked first, against the same rules the read side validates rows with
(``acoustack.schema`` and ``acoustack.limits``): records arrive as schema objects, validated when
they were built; a single value (a new path, a reason, a query's path) is checked here with its
field's own type, before the transaction starts. A row read back inside a write is validated before
the transaction commits, so a write the read side would refuse rolls back. Rows that are already
stored and unreadable (written by an older version) never fail a listing: each is skipped with a
warning naming it; asked for by id, it is DATA_LOSS. Migration 0003 repairs them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from google.protobuf.message import DecodeError
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from pydantic import BaseModel, ValidationError

from acoustack import limits, schema
from acoustack.errors import (
    AlreadyExistsError,
    DataLossError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
    quote,
    validation_message,
)
from acoustack.v1 import types_pb2 as pb
from acoustack.wire_validation import check_model_output
from acoustack_storage.activity import (
    ActivityCount,
    ActivityQuery,
    count_detections,
    insert_tag_counts,
)

log = logging.getLogger(__name__)

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 100


# Seconds the pool keeps retrying one lost connection before it gives up and lets the next
# request try afresh; bounds the time from Postgres coming back to storage serving again.
RECONNECT_WINDOW_S = 5.0


@dataclass(frozen=True)
class RetentionRun:
    """What one retention run did (``retention_runs``)."""

    ran_at: dt.datetime
    destination: str
    max_age_days: float
    keep_free_mb: int
    keep_best_per_species: int
    deleted_for_age: int = 0
    deleted_for_space: int = 0
    kept_as_best: int = 0
    free_mb: float | None = None
    short_of_free_mb: float = 0.0
    highest_deleted_score: float | None = None


@dataclass(frozen=True)
class RetentionSummary:
    """The newest run, and the deletions of every run since ``since``."""

    last: RetentionRun
    since: dt.datetime
    deleted_for_age: int
    deleted_for_space: int
    highest_deleted_score: float | None


def effective_limit(limit: int) -> int:
    if limit < 0 or limit > MAX_LIMIT:
        raise InvalidArgumentError(
            f"limit: must be between 1 and {MAX_LIMIT} (0 means {DEFAULT_LIMIT})"
        )
    return limit or DEFAULT_LIMIT


@dataclass
class StoredRecording:
    """A recording with the outputs of the models that processed it.

    Outputs stay serialized (acoustack.v1.ModelOutput): the gRPC layer parses each straight into
    its reply, with no copy in between.
    """

    recording: schema.Recording
    model_output_documents: list[bytes] = field(default_factory=list)


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
    # A previous page's next_page_token: only hits past it in this order.
    page_token: str = ""


@dataclass(frozen=True)
class DetectionHit:
    detection: pb.Detection  # in wire form, as the model output document holds it
    recording_id: uuid.UUID
    model_output_id: uuid.UUID
    model_name: str
    recording_started_at: dt.datetime
    # The detection's place in its model output, which makes the listing's order total.
    index: int = 0

    def sort_key(self) -> tuple[dt.datetime, float, str, str, int]:
        d = self.detection
        box_start = d.box.start_time_s if d.HasField("box") else -1.0
        return (self.recording_started_at, box_start, d.id, str(self.model_output_id), self.index)


def page_token(hit: DetectionHit) -> str:
    """Where the next page starts: the last hit's place in the listing's order."""
    started_at, box_start, detection_id, output_id, index = hit.sort_key()
    text = json.dumps([started_at.isoformat(), box_start, detection_id, output_id, index])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def read_page_token(token: str) -> tuple[dt.datetime, float, str, str, int]:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        started_at, box_start, detection_id, output_id, index = json.loads(text)
        key = (
            dt.datetime.fromisoformat(started_at),
            float(box_start),
            str(detection_id),
            str(uuid.UUID(output_id)),
            int(index),
        )
        if key[0].tzinfo is None:
            raise ValueError("no time zone")
        return key
    except (ValueError, TypeError, UnicodeDecodeError, binascii.Error, OverflowError):
        raise InvalidArgumentError(
            f"page_token: {quote(token)} is not a token a listing gave; "
            "ask for the first page again without it"
        ) from None


_DEPLOYMENT_COLUMNS = "id, name, latitude, longitude, started_at, ended_at"
_RECORDING_COLUMNS = (
    "id, deployment_id, device_id, source_id, path, started_at, duration_s, capture_samplerate_hz, "
    "channels, time_expansion, status, failure_reason, created_at"
)
# A message's state as of the database's clock, the same clock next_attempt_at is set by.
_MESSAGE_STATE = """CASE WHEN {p}sent_at IS NOT NULL THEN 'sent'
    WHEN {p}dead_at IS NOT NULL THEN 'dead'
    WHEN {p}next_attempt_at > now() THEN 'backing_off' ELSE 'due' END"""
_MESSAGE_DUE = (
    "{p}sent_at IS NULL AND {p}dead_at IS NULL "
    "AND ({p}next_attempt_at IS NULL OR {p}next_attempt_at <= now())"
)


def _message_columns(prefix: str = "") -> str:
    names = (
        "id, content, created_at, priority, attempts, last_attempt_at, failed_tries, refusals, "
        "next_attempt_at, sent_at, dead_at, last_status"
    )
    listed = ", ".join(prefix + name for name in names.split(", "))
    return f"{listed}, {_MESSAGE_STATE.format(p=prefix)} AS state"


_MESSAGE_COLUMNS = _message_columns()
_RESPONSE_COLUMNS = "id, message_id, status, content, received_at"
# The longest wait a try's outcome may ask for: a week (a Retry-After beyond is a server's bug).
MAX_RETRY_IN_S = 7 * 24 * 3600.0
MAX_DEAD_AFTER_REFUSALS = 1000


@dataclass(frozen=True)
class TryOutcome:
    """How a try (every messenger asked once) without a success ended: a refusal for good, or a
    temporary failure; due again in ``retry_in_s``."""

    refused: bool
    retry_in_s: float
    dead_after_refusals: int

    def __post_init__(self) -> None:
        if not 0 <= self.retry_in_s <= MAX_RETRY_IN_S:  # also refuses NaN
            raise InvalidArgumentError(
                f"outcome.retry_in_s: {self.retry_in_s} is not within 0..{MAX_RETRY_IN_S:g}"
            )
        if not 1 <= self.dead_after_refusals <= MAX_DEAD_AFTER_REFUSALS:
            raise InvalidArgumentError(
                f"outcome.dead_after_refusals: {self.dead_after_refusals} is not within "
                f"1..{MAX_DEAD_AFTER_REFUSALS}"
            )


@dataclass(frozen=True)
class OutboxCounts:
    due: int
    backing_off: int
    dead: int
    sent: int
    next_attempt_at: dt.datetime | None  # the soonest among those backing off


# A response: counted on its message (a success marks it sent), kept, and with a try's outcome
# the message's wait and refusals.
_RESPONSE_UPDATE = """UPDATE messages SET
       attempts = attempts + 1,
       last_attempt_at = GREATEST(last_attempt_at, %(at)s),
       sent_at = CASE WHEN %(ok)s THEN COALESCE(sent_at, %(at)s) ELSE sent_at END,
       last_status = CASE WHEN last_attempt_at IS NULL OR %(at)s >= last_attempt_at
                          THEN %(status)s ELSE last_status END
   WHERE id = %(id)s"""
_RESPONSE_INSERT = """INSERT INTO responses (message_id, status, content, received_at)
   VALUES (%s, %s, %s, %s)"""
# A batch of responses in one statement: kept in their order, and each message's delivery state
# moved on as _RESPONSE_UPDATE once per response, in order, would have (a batch may hold several
# responses of one message, one per messenger): its latest response's status (the last one given
# among equal times) unless an earlier try is later still, its first success's time.
_RESPONSES_MANY = """WITH r AS (
       SELECT * FROM unnest(%(ids)s::uuid[], %(statuses)s::text[], %(contents)s::text[],
                            %(ats)s::timestamptz[])
           WITH ORDINALITY AS r (message_id, status, content, received_at, n)
   ), kept AS (
       INSERT INTO responses (message_id, status, content, received_at)
       SELECT message_id, status, content, received_at FROM r ORDER BY n
   )
   UPDATE messages m SET
       attempts = m.attempts + t.tries,
       last_attempt_at = GREATEST(m.last_attempt_at, t.at),
       sent_at = COALESCE(m.sent_at, t.sent_at),
       last_status = CASE WHEN m.last_attempt_at IS NULL OR t.at >= m.last_attempt_at
                          THEN t.status ELSE m.last_status END
   FROM (SELECT message_id, count(*) AS tries, max(received_at) AS at,
                (array_agg(received_at ORDER BY n) FILTER (WHERE status = 'success'))[1]
                    AS sent_at,
                (array_agg(status ORDER BY received_at DESC, n DESC))[1] AS status
         FROM r GROUP BY message_id) t
   WHERE m.id = t.message_id"""
_OUTCOME_UPDATE = """UPDATE messages SET
       failed_tries = failed_tries + 1,
       refusals = refusals + CASE WHEN %(refused)s THEN 1 ELSE 0 END,
       next_attempt_at = now() + make_interval(secs => %(retry_in_s)s),
       dead_at = CASE WHEN %(refused)s AND refusals + 1 >= %(dead_after)s THEN now() END
   WHERE id = %(id)s AND sent_at IS NULL AND dead_at IS NULL"""


def _response_values(response: schema.Response) -> dict:
    return {
        "at": response.received_at,
        "ok": response.status is schema.ResponseStatus.SUCCESS,
        "status": response.status.value,
        "id": response.message_id,
    }


def _outcome_values(response: schema.Response, outcome: TryOutcome) -> dict:
    return {
        "refused": outcome.refused,
        "retry_in_s": outcome.retry_in_s,
        "dead_after": outcome.dead_after_refusals,
        "id": response.message_id,
    }


Record = TypeVar("Record", bound=BaseModel)
_REPAIR_HELP = "migration 0003 repairs such rows at the storage service's start; see its log"


def _row_name(table: str, row: dict) -> str:
    return f"{table} row {row.get('id')}"


def _read(record: type[Record], table: str, row: dict) -> Record:
    """One stored row as its record; a row the read side refuses is DATA_LOSS naming it."""
    try:
        return record.model_validate(row)
    except ValidationError as exc:
        problem = validation_message(exc, "")
        log.error("%s cannot be read back: %s", _row_name(table, row), problem)
        raise DataLossError(
            f"{_row_name(table, row)} cannot be read back: {problem}", help=_REPAIR_HELP
        ) from None


def _readable(
    record: type[Record], table: str, rows: Iterable[dict], *, name_only: tuple[str, ...] = ()
) -> list[Record]:
    """A listing's rows as records; one the read side refuses is skipped with a warning naming
    it, so one bad row never fails the whole listing. ``name_only``: columns selected to name a
    row, not part of its record."""
    found = []
    for row in rows:
        try:
            values = {k: v for k, v in row.items() if k not in name_only} if name_only else row
            found.append(record.model_validate(values))
        except ValidationError as exc:
            log.warning(
                "skipping %s: it cannot be read back (%s); %s",
                _row_name(table, row),
                validation_message(exc, ""),
                _REPAIR_HELP,
            )
    return found


def _deployment(row: dict) -> schema.Deployment:
    return _read(schema.Deployment, "deployments", row)


def _recording(row: dict) -> schema.Recording:
    return _read(schema.Recording, "recordings", row)


_TAG_SEPARATOR = "\x1f"  # the ASCII unit separator: never part of a tag key


def _recording_event(recording: schema.Recording) -> dict:
    return {
        "recording_id": str(recording.id),
        "deployment_id": str(recording.deployment_id) if recording.deployment_id else None,
        "started_at": recording.started_at.isoformat(),
        "status": recording.status.value,
        "path": recording.path,
    }


def _tag_entry(key: str, value: str | None) -> str:
    return key if value is None else f"{key}{_TAG_SEPARATOR}{value}"


def _output_document(output_id: uuid.UUID, document: bytes) -> pb.ModelOutput | None:
    """A stored output's document; one that does not parse is skipped with a warning."""
    try:
        return pb.ModelOutput.FromString(document)
    except DecodeError:
        log.warning(
            "skipping model_outputs row %s: its document does not parse as acoustack.v1.ModelOutput",
            output_id,
        )
        return None


def tag_best_confidences(output: pb.ModelOutput) -> dict[tuple[str, str], float]:
    """Each (key, value) detection tag and the highest confidence it was given (what
    ``wire_validation.check_model_output`` returns, for outputs stored before it did)."""
    best: dict[tuple[str, str], float] = {}
    for detection in output.detections:
        for tag in detection.tags:
            pair = (tag.tag.key, tag.tag.value)
            if tag.confidence > best.get(pair, -1.0):
                best[pair] = tag.confidence
    return best


def tag_index(pairs: set[tuple[str, str]]) -> list[str]:
    """Every tag key, and every key=value pair, carried by an output's detections."""
    return sorted({key for key, _ in pairs} | {_tag_entry(key, value) for key, value in pairs})


def _detection_matches(d: pb.Detection, query: DetectionFilter) -> bool:
    if query.min_score is not None and d.detection_score < query.min_score:
        return False
    if query.max_score is not None and d.detection_score > query.max_score:
        return False
    if query.tag_key:
        return any(
            t.tag.key == query.tag_key and (not query.tag_value or t.tag.value == query.tag_value)
            for t in d.tags
        )
    return True


class PostgresStore:
    def __init__(self, pool: psycopg_pool.ConnectionPool) -> None:
        self._pool = pool
        # Told of each change after it commits (acoustack_storage.events); nothing by default.
        self.events: Callable[[str, dict], None] = lambda event, body: None

    def _announce(self, event: str, body: dict) -> None:
        try:
            self.events(event, body)
        except Exception:  # an event is never worth a write: the subscriber reloads its state
            log.exception("event %s not published", event)

    @classmethod
    def open(
        cls, url: str, *, min_size: int = 1, max_size: int = 8, timeout_s: float = 5.0
    ) -> PostgresStore:
        pool = psycopg_pool.ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout_s,
            # The pool's reconnect backoff doubles without bound, so a long reconnect window
            # would leave us refusing work for about as long as the outage lasted after Postgres
            # is back. A short window keeps attempts close together; once it has given up, the
            # next request (health checks make one every few seconds) starts a fresh attempt.
            reconnect_timeout=RECONNECT_WINDOW_S,
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
        ended_at = schema.check_time(ended_at, "ended_at")
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
        stored, created = self._store_recording(recording)
        if created:
            self._announce("recording.stored", _recording_event(stored))
        return stored, created

    def _store_recording(self, recording: schema.Recording) -> tuple[schema.Recording, bool]:
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
                f"recording.path: {quote(r.path)} already belongs to recording {owner}",
                help="every recording needs its own file name",
            ) from None
        identity = ("deployment_id", "device_id", "source_id", "path", "started_at", "duration_s")
        if any(getattr(existing, k) != getattr(r, k) for k in identity):
            raise AlreadyExistsError(
                f"recording.id: recording {r.id} was already stored with other values "
                f"(path {quote(existing.path)})"
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
                binary=True,  # the documents arrive as raw bytes, not hex text to decode
            ).fetchall()
            for row in rows:
                entries[row["recording_id"]].model_output_documents.append(row["document"])
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
        for i, path in enumerate(paths):
            schema.check_path(path, f"paths.{i}")
        with self._tx() as conn:
            rows = conn.execute(
                f"""SELECT {_RECORDING_COLUMNS} FROM recordings WHERE path = ANY(%s)
                    ORDER BY (status = 'deleted'), started_at, id""",
                (list(paths),),
            ).fetchall()
            recordings = _readable(schema.Recording, "recordings", rows)
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
            recordings = _readable(
                schema.Recording, "recordings", conn.execute(sql, params).fetchall()
            )
            if include_model_outputs:
                return self._attach_outputs(conn, recordings)
        return [StoredRecording(r) for r in recordings]

    def most_confident_per_tag_value(
        self, key: str, per_value: int, status: schema.RecordingStatus, path_prefix: str
    ) -> tuple[list[tuple[str, float, float, uuid.UUID]], list[tuple[uuid.UUID, bytes]]]:
        """For each value of tag ``key``, the ``per_value`` recordings (with ``status``, under
        ``path_prefix``) whose detections gave it the highest confidence, as (value, confidence,
        the recording's best detection score, recording id); and the (recording id, document)
        of those recordings' outputs stored before tag confidences were kept, for the caller to
        rank itself."""
        prefix = key + _TAG_SEPARATOR
        with self._tx() as conn:
            rows = conn.execute(
                """WITH tagged AS (
                       SELECT o.recording_id, t.entry, max(t.confidence) AS confidence,
                              max(o.max_detection_score) AS score
                       FROM model_outputs o
                       JOIN recordings r ON r.id = o.recording_id
                       CROSS JOIN LATERAL unnest(o.tag_best_entries, o.tag_best_confidences)
                           AS t(entry, confidence)
                       WHERE r.status = %s AND starts_with(r.path, %s)
                         AND starts_with(t.entry, %s)
                       GROUP BY o.recording_id, t.entry)
                   SELECT entry, confidence, score, recording_id FROM (
                       SELECT tagged.*, row_number() OVER (
                           PARTITION BY entry ORDER BY confidence DESC, score DESC, recording_id
                       ) AS rank
                       FROM tagged) ranked
                   WHERE rank <= %s""",
                (status.value, path_prefix, prefix, per_value),
            ).fetchall()
            legacy = conn.execute(
                """SELECT o.recording_id, o.document FROM model_outputs o
                   JOIN recordings r ON r.id = o.recording_id
                   WHERE o.tag_best_entries IS NULL AND r.status = %s
                     AND starts_with(r.path, %s)""",
                (status.value, path_prefix),
                binary=True,
            ).fetchall()
        ranked = [
            (
                row["entry"][len(prefix) :],
                row["confidence"],
                row["score"] or 0.0,
                row["recording_id"],
            )
            for row in rows
        ]
        return ranked, [(row["recording_id"], row["document"]) for row in legacy]

    def saved_by_value(
        self,
        path_prefix: str,
        *,
        after: tuple[float, dt.datetime, uuid.UUID] | None = None,
        limit: int = MAX_LIMIT,
    ) -> list[tuple[schema.Recording, float]]:
        """Saved recordings under ``path_prefix``, the least valuable first: by their best
        detection score over every model (0 with no detection), then the oldest first, then by id;
        each with that score. ``after`` continues past the (score, started_at, id) of the last
        one given."""
        params: list[Any] = [path_prefix]
        resume = ""
        if after is not None:
            resume = "WHERE (value, started_at, id) > (%s, %s, %s)"
            params.extend(after)
        params.append(effective_limit(limit))
        with self._tx() as conn:
            rows = conn.execute(
                f"""SELECT * FROM (
                        SELECT {_RECORDING_COLUMNS}, coalesce((
                                   SELECT max(o.max_detection_score) FROM model_outputs o
                                   WHERE o.recording_id = r.id), 0) AS value
                        FROM recordings r
                        WHERE r.status = 'saved' AND starts_with(r.path, %s)) ranked
                    {resume}
                    ORDER BY value, started_at, id LIMIT %s""",
                params,
            ).fetchall()
            values = {row["id"]: row["value"] for row in rows}
            recordings = _readable(schema.Recording, "recordings", rows, name_only=("value",))
        return [(r, values[r.id]) for r in recordings]

    def record_retention_run(self, run: RetentionRun, *, keep_days: float = 7.0) -> None:
        """Keep what a retention run did; runs older than ``keep_days`` go."""
        with self._tx() as conn:
            conn.execute(
                """INSERT INTO retention_runs (ran_at, destination, max_age_days, keep_free_mb,
                       keep_best_per_species, deleted_for_age, deleted_for_space, kept_as_best,
                       free_mb, short_of_free_mb, highest_deleted_score)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                (
                    run.ran_at,
                    run.destination,
                    run.max_age_days,
                    run.keep_free_mb,
                    run.keep_best_per_species,
                    run.deleted_for_age,
                    run.deleted_for_space,
                    run.kept_as_best,
                    run.free_mb,
                    run.short_of_free_mb,
                    run.highest_deleted_score,
                ),
            )
            conn.execute(
                "DELETE FROM retention_runs WHERE ran_at < %s",
                (run.ran_at - dt.timedelta(days=keep_days),),
            )

    def retention_summary(self, since: dt.datetime) -> RetentionSummary | None:
        """The newest run, and what the runs since ``since`` deleted (None: no run recorded)."""
        with self._tx() as conn:
            last = conn.execute(
                "SELECT * FROM retention_runs ORDER BY ran_at DESC, id DESC LIMIT 1"
            ).fetchone()
            if last is None:
                return None
            totals = conn.execute(
                """SELECT coalesce(sum(deleted_for_age), 0) AS age,
                          coalesce(sum(deleted_for_space), 0) AS space,
                          max(highest_deleted_score) AS score
                   FROM retention_runs WHERE ran_at >= %s""",
                (since,),
            ).fetchone()
        last.pop("id")
        return RetentionSummary(
            last=RetentionRun(**last),
            since=since,
            deleted_for_age=totals["age"],
            deleted_for_space=totals["space"],
            highest_deleted_score=totals["score"],
        )

    def _update_recording(
        self,
        recording_id: uuid.UUID,
        assignments: str,
        params: tuple,
        *,
        only_if: schema.RecordingStatus | None = None,
        on_conflict: Callable[[], Exception] | None = None,
    ) -> schema.Recording:
        """One UPDATE of a recording; with ``only_if``, only while it still has that status.
        ``on_conflict`` gives the error for a path another live recording holds."""
        where, guard = "id = %s", (recording_id,)
        if only_if is not None:
            where, guard = "id = %s AND status = %s", (recording_id, only_if.value)
        try:
            with self._tx() as conn:
                row = conn.execute(
                    f"""UPDATE recordings SET {assignments}, updated_at = now() WHERE {where}
                        RETURNING {_RECORDING_COLUMNS}""",
                    (*params, *guard),
                ).fetchone()
                if row is not None:
                    # Read back before the commit: a row the read side refuses rolls back.
                    return _recording(row)
                current = conn.execute(
                    "SELECT status FROM recordings WHERE id = %s", (recording_id,)
                ).fetchone()
        except pg_errors.UniqueViolation:
            if on_conflict is None:
                raise
            raise on_conflict() from None
        if current is None:
            raise NotFoundError(f"recording_id: no recording {recording_id}")
        raise FailedPreconditionError(
            f"recording_id: recording {recording_id} is {current['status']} now, not "
            f"{only_if.value}: left as it is"
        )

    def update_recording_path(
        self,
        recording_id: uuid.UUID,
        path: str,
        status: schema.RecordingStatus | None = None,
    ) -> schema.Recording:
        updated = self._update_recording_path(recording_id, path, status)
        self._announce("recording.filed", _recording_event(updated))
        return updated

    def _update_recording_path(
        self, recording_id: uuid.UUID, path: str, status: schema.RecordingStatus | None = None
    ) -> schema.Recording:
        if not path:
            raise InvalidArgumentError("path: required (the recording's new place)")
        path = schema.check_path(path, "path")

        def taken() -> Exception:
            owner = self._live_recording_id_at(path)
            return AlreadyExistsError(f"path: {quote(path)} already belongs to recording {owner}")

        if status is None:
            return self._update_recording(recording_id, "path = %s", (path,), on_conflict=taken)
        return self._update_recording(
            recording_id, "path = %s, status = %s", (path, status.value), on_conflict=taken
        )

    def mark_recording_failed(
        self,
        recording_id: uuid.UUID,
        reason: str,
        *,
        only_if: schema.RecordingStatus | None = None,
    ) -> schema.Recording:
        """Mark it failed; with ``only_if``, only while it still has that status (a check that
        read it a moment ago must not undo a filing or a deletion that came in between).

        A long reason is cut to the limit; a reason with control characters is refused."""
        if not reason.strip():
            raise InvalidArgumentError("reason: say why the recording failed")
        reason = schema.check_failure_reason(reason[: limits.REASON_CHARS], "reason")
        return self._update_recording(
            recording_id,
            "status = 'failed', failure_reason = %s",
            (reason,),
            only_if=only_if,
            on_conflict=lambda: self._revived_path_taken(recording_id),
        )

    def _revived_path_taken(self, recording_id: uuid.UUID) -> Exception:
        """Why a deleted recording cannot be marked failed: a failed recording is live again, and
        its old path now belongs to another live recording."""
        with self._tx() as conn:
            row = conn.execute(
                """SELECT r.path, o.id AS owner FROM recordings r
                   JOIN recordings o ON o.path = r.path AND o.status <> 'deleted' AND o.id <> r.id
                   WHERE r.id = %s""",
                (recording_id,),
            ).fetchone()
        path, owner = (row["path"], row["owner"]) if row else ("?", "?")
        return FailedPreconditionError(
            f"recording_id: recording {recording_id} is deleted and its path {quote(path)} now "
            f"belongs to recording {owner}: marking it failed would give that file two live "
            "recordings",
            help="leave it deleted",
        )

    def mark_recording_deleted(self, recording_id: uuid.UUID) -> schema.Recording:
        return self._update_recording(recording_id, "status = 'deleted'", ())

    # --- model outputs ----------------------------------------------------------------------

    def store_model_output(
        self,
        output: pb.ModelOutput,
        messages: Sequence[schema.Message] = (),
        *,
        tag_confidences: Mapping[tuple[str, str], float] | None = None,
    ) -> tuple[uuid.UUID, bool]:
        output_id, created = self._store_model_output(
            output, messages, tag_confidences=tag_confidences
        )
        if created:
            self._announce(
                "model_output.stored",
                {
                    "model_output_id": str(output_id),
                    "recording_id": output.recording_id,
                    "model_name": output.model_name,
                    "detections": len(output.detections),
                },
            )
        return output_id, created

    def _store_model_output(
        self,
        output: pb.ModelOutput,
        messages: Sequence[schema.Message] = (),
        *,
        tag_confidences: Mapping[tuple[str, str], float] | None = None,
    ) -> tuple[uuid.UUID, bool]:
        """Store an output and its messages in one transaction; return its id and whether it is new.

        ``tag_confidences`` is what ``wire_validation.check_model_output`` returned for
        ``output``: given, the output is taken as checked; not given, it is checked here (and its
        defaults filled). Idempotent per (recording, model name): a second output of the same
        model for the same recording (a redelivered detection task) stores nothing and returns
        the first one.
        """
        best = check_model_output(output) if tag_confidences is None else tag_confidences
        recording_id = uuid.UUID(output.recording_id)
        output_id = uuid.UUID(output.id)
        scores = [d.detection_score for d in output.detections]
        entries = [_tag_entry(key, value) for key, value in best]
        try:
            with self._tx() as conn:
                inserted = conn.execute(
                    """INSERT INTO model_outputs (
                           id, recording_id, model_name, model_version, created_at,
                           recording_started_at, deployment_id, detection_count,
                           min_detection_score, max_detection_score, tag_index, document,
                           tag_best_entries, tag_best_confidences)
                       SELECT %s, r.id, %s, %s, %s, r.started_at, r.deployment_id, %s, %s, %s, %s, %s,
                              %s, %s
                       FROM recordings r WHERE r.id = %s
                       ON CONFLICT (recording_id, model_name) DO NOTHING
                       RETURNING id, recording_started_at, deployment_id""",
                    (
                        output_id,
                        output.model_name,
                        output.model_version,
                        output.created_at.ToDatetime(tzinfo=dt.UTC),
                        len(scores),
                        min(scores, default=None),
                        max(scores, default=None),
                        tag_index(set(best)),
                        output.SerializeToString(),
                        entries,
                        list(best.values()),
                        recording_id,
                    ),
                ).fetchone()
                if inserted is None:
                    row = conn.execute(
                        "SELECT id FROM model_outputs WHERE recording_id = %s AND model_name = %s",
                        (recording_id, output.model_name),
                    ).fetchone()
                    if row is None:
                        raise NotFoundError(
                            f"model_output.recording_id: no recording {recording_id}"
                        )
                    return row["id"], False
                insert_tag_counts(
                    conn,
                    output_id,
                    output,
                    inserted["recording_started_at"],
                    inserted["deployment_id"],
                )
                self._insert_messages(conn, messages, output_id)
        except pg_errors.UniqueViolation as exc:
            what = "model_output.id" if "model_outputs_pkey" in str(exc) else "a message id"
            raise AlreadyExistsError(f"{what} is already used by another record") from None
        return output_id, True

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
        return self.list_detections_page(query)[0]

    def list_detections_page(self, query: DetectionFilter) -> tuple[list[DetectionHit], str]:
        """Detections matching every condition, ordered by recording start then call start (at
        most ``query.limit``), and the token of the next page (empty: no more match).

        The outputs' index columns narrow the candidates (time, model, deployment, score range,
        tag); each candidate's detections are then checked one by one.
        """
        if query.tag_value and not query.tag_key:
            raise InvalidArgumentError("tag_key: required when tag_value is given")
        # Values no stored output can have are refused by name, as they would be on a write.
        if query.model_name:
            schema.check_name(query.model_name, "model_name")
        if query.tag_key:
            schema.check_name(query.tag_key, "tag_key")
        schema.check_tag_value(query.tag_value, "tag_value")
        for name in ("min_score", "max_score"):
            if getattr(query, name) is not None:
                schema.check_probability(getattr(query, name), name)
        if (
            query.min_score is not None
            and query.max_score is not None
            and query.min_score > query.max_score
        ):
            raise InvalidArgumentError("min_score: greater than max_score, so nothing could match")
        limit = effective_limit(query.limit)
        after = read_page_token(query.page_token) if query.page_token else None
        # One more than asked for: whether it exists says if there is a next page.
        wanted = limit + 1
        where, params = ["detection_count > 0"], []
        if after is not None:
            where.append(f"recording_started_at {'<=' if query.newest_first else '>='} %s")
            params.append(after[0])
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
            where.append("max_detection_score >= %s")
            params.append(query.min_score)
        if query.max_score is not None:
            where.append("min_detection_score <= %s")
            params.append(query.max_score)
        if query.tag_key:
            where.append("tag_index @> %s")
            params.append([_tag_entry(query.tag_key, query.tag_value or None)])
        order = "DESC" if query.newest_first else "ASC"
        sql = (
            "SELECT id, recording_id, recording_started_at, model_name, document "
            f"FROM model_outputs WHERE {' AND '.join(where)} "
            f"ORDER BY recording_started_at {order}, id"
        )
        hits: list[DetectionHit] = []
        with self._pool.connection() as conn, conn.transaction():
            cursor = conn.cursor(name="list_detections", row_factory=dict_row, binary=True)
            cursor.itersize = 64
            group_start = None
            for row in cursor.execute(sql, params):
                # Stop once the limit is reached, but only at the end of a recording-start group,
                # so the final sort sees every detection of the last recording it keeps.
                if len(hits) >= wanted and row["recording_started_at"] != group_start:
                    break
                group_start = row["recording_started_at"]
                output = _output_document(row["id"], row["document"])
                if output is None:
                    continue
                for index, d in enumerate(output.detections):
                    if not _detection_matches(d, query):
                        continue
                    hit = DetectionHit(
                        d, row["recording_id"], row["id"],
                        row["model_name"], row["recording_started_at"], index,
                    )  # fmt: skip
                    if after is not None and (
                        hit.sort_key() >= after if query.newest_first else hit.sort_key() <= after
                    ):
                        continue
                    hits.append(hit)
        hits.sort(key=DetectionHit.sort_key, reverse=query.newest_first)
        more = len(hits) > limit
        return hits[:limit], page_token(hits[limit - 1]) if more else ""

    def count_detections(self, query: ActivityQuery) -> list[ActivityCount]:
        """Detections per hour or day per tag value, summed by Postgres (see ``activity``)."""
        query.check()
        with self._tx() as conn:
            return count_detections(conn, query)

    # --- outbox -----------------------------------------------------------------------------

    def store_message(self, message: schema.Message) -> tuple[schema.Message, bool]:
        with self._tx() as conn:
            row = conn.execute(
                f"""INSERT INTO messages (id, content, created_at, priority) VALUES (%s, %s, %s, %s)
                    ON CONFLICT (id) DO NOTHING RETURNING {_MESSAGE_COLUMNS}""",
                (message.id, message.content, message.created_at, message.priority),
            ).fetchone()
            if row is not None:
                return _read(schema.Message, "messages", row), True
            row = conn.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = %s", (message.id,)
            ).fetchone()
        existing = _read(schema.Message, "messages", row)
        if existing.content != message.content:
            raise AlreadyExistsError(f"message.id: message {message.id} exists with other content")
        return existing, False

    def get_unsent_messages(
        self, limit: int, *, newest_first: bool = False, after: uuid.UUID | None = None
    ) -> list[schema.Message]:
        """The messages that are due: unsent, not dead letters, past their next attempt; with
        ``after``, those that come after that message in the order (a keyset page: the messages
        of earlier pages still unsent are not read again)."""
        order = "DESC" if newest_first else "ASC"
        later = ">" if order == "ASC" else "<"
        keyset, params = "", []
        with self._tx() as conn:
            if after is not None:
                key = conn.execute(
                    "SELECT priority, created_at FROM messages WHERE id = %s", (after,)
                ).fetchone()
                if key is None:
                    raise NotFoundError(f"after_id: no message {after}")
                # ORDER BY priority DESC, created_at {order}, id: what sorts after the key.
                keyset = f"""AND (priority < %s OR (priority = %s AND (created_at {later} %s
                                  OR (created_at = %s AND id > %s))))"""
                params = [key["priority"], key["priority"], key["created_at"]]
                params += [key["created_at"], after]
            rows = conn.execute(
                f"""SELECT {_MESSAGE_COLUMNS} FROM messages WHERE {_MESSAGE_DUE.format(p="")}
                    {keyset} ORDER BY priority DESC, created_at {order}, id LIMIT %s""",
                (*params, effective_limit(limit)),
            ).fetchall()
        return _readable(schema.Message, "messages", rows)

    def store_response(self, response: schema.Response, outcome: TryOutcome | None = None) -> None:
        """Keep a response (a success marks its message sent); with ``outcome``, the end of a
        try without a success: the message waits ``retry_in_s``, and a refusal that reaches
        ``dead_after_refusals`` makes it a dead letter. A message already sent or dead keeps
        its state."""
        with self._tx() as conn:
            self._write_response(conn, response, outcome)
        self._announce_sent([response])

    def _announce_sent(self, responses: Iterable[schema.Response]) -> None:
        for response in responses:
            if response.status == schema.ResponseStatus.SUCCESS:
                self._announce(
                    "message.sent",
                    {
                        "message_id": str(response.message_id),
                        "received_at": response.received_at.isoformat(),
                    },
                )

    def store_responses(
        self, responses: Sequence[tuple[schema.Response, TryOutcome | None]]
    ) -> None:
        """Many responses in one transaction (a messaging run's): all or none. The responses
        go in and their messages' states move on in one set-based statement (executemany of a
        statement per response cost 0.13 ms a response); the outcomes, only of tries without a
        success, after it, as they depend on whether a message is now sent."""
        wanted = list({r.message_id for r, _ in responses})
        with self._tx() as conn:
            known = {
                row["id"]
                for row in conn.execute(
                    "SELECT id FROM messages WHERE id = ANY(%s)", (wanted,)
                ).fetchall()
            }
            for index, (response, _) in enumerate(responses):
                if response.message_id not in known:
                    raise NotFoundError(
                        f"responses.{index}.response.message_id: no message {response.message_id}"
                    )
            with conn.cursor() as cursor:
                cursor.execute(
                    _RESPONSES_MANY,
                    {
                        "ids": [r.message_id for r, _ in responses],
                        "statuses": [r.status.value for r, _ in responses],
                        "contents": [r.content for r, _ in responses],
                        "ats": [r.received_at for r, _ in responses],
                    },
                )
                outcomes = [_outcome_values(r, o) for r, o in responses if o is not None]
                if outcomes:
                    cursor.executemany(_OUTCOME_UPDATE, outcomes)
        self._announce_sent(r for r, _ in responses)

    def _write_response(
        self,
        conn: psycopg.Connection,
        response: schema.Response,
        outcome: TryOutcome | None,
    ) -> None:
        updated = conn.execute(
            _RESPONSE_UPDATE + " RETURNING id", _response_values(response)
        ).fetchone()
        if updated is None:
            raise NotFoundError(f"response.message_id: no message {response.message_id}")
        conn.execute(
            _RESPONSE_INSERT,
            (response.message_id, response.status.value, response.content, response.received_at),
        )
        if outcome is not None:
            conn.execute(_OUTCOME_UPDATE, _outcome_values(response, outcome))

    def count_messages(self) -> OutboxCounts:
        backing_off = "sent_at IS NULL AND dead_at IS NULL AND next_attempt_at > now()"
        with self._tx() as conn:
            row = conn.execute(
                f"""SELECT
                        count(*) FILTER (WHERE {_MESSAGE_DUE.format(p="")}) AS due,
                        count(*) FILTER (WHERE {backing_off}) AS backing_off,
                        count(*) FILTER (WHERE sent_at IS NULL AND dead_at IS NOT NULL) AS dead,
                        count(*) FILTER (WHERE sent_at IS NOT NULL) AS sent,
                        min(next_attempt_at) FILTER (WHERE {backing_off}) AS next_attempt_at
                    FROM messages"""
            ).fetchone()
        return OutboxCounts(**row)

    def recordings_by_status(self) -> tuple[dict[str, int], dt.datetime | None]:
        """How many recordings are in each status, and when the newest one ended."""
        with self._tx() as conn:
            counts = conn.execute(
                "SELECT status, count(*) AS n FROM recordings GROUP BY status"
            ).fetchall()
            newest = conn.execute(
                """SELECT started_at + make_interval(secs => duration_s) AS ended_at
                   FROM recordings ORDER BY started_at DESC LIMIT 1"""
            ).fetchone()
        return {row["status"]: row["n"] for row in counts}, newest["ended_at"] if newest else None

    def list_messages(
        self,
        state: schema.MessageState | None,
        limit: int,
        *,
        newest_first: bool = False,
    ) -> list[tuple[schema.Message, schema.Response | None]]:
        """One state's messages (None: every unsent one), each with its newest response; by
        creation time, dead letters by when they died."""
        where = {
            None: "m.sent_at IS NULL",
            schema.MessageState.DUE: _MESSAGE_DUE.format(p="m."),
            schema.MessageState.BACKING_OFF: (
                "m.sent_at IS NULL AND m.dead_at IS NULL AND m.next_attempt_at > now()"
            ),
            schema.MessageState.SENT: "m.sent_at IS NOT NULL",
            schema.MessageState.DEAD: "m.sent_at IS NULL AND m.dead_at IS NOT NULL",
        }[state]
        by = "m.dead_at" if state is schema.MessageState.DEAD else "m.created_at"
        order = "DESC" if newest_first else "ASC"
        with self._tx() as conn:
            rows = conn.execute(
                f"""SELECT {_message_columns("m.")}, r.id AS r_id, r.message_id AS r_message_id,
                           r.status AS r_status, r.content AS r_content,
                           r.received_at AS r_received_at
                    FROM messages m LEFT JOIN LATERAL (
                        SELECT {_RESPONSE_COLUMNS} FROM responses WHERE message_id = m.id
                        ORDER BY received_at DESC, id DESC LIMIT 1) r ON true
                    WHERE {where} ORDER BY {by} {order}, m.id LIMIT %s""",
                (effective_limit(limit),),
            ).fetchall()
        found = []
        for row in rows:
            reply = {k[2:]: row.pop(k) for k in list(row) if k.startswith("r_")}
            messages = _readable(schema.Message, "messages", [row])
            if not messages:
                continue
            responses = (
                _readable(schema.Response, "responses", [reply], name_only=("id",))
                if reply["id"] is not None
                else []
            )
            found.append((messages[0], responses[0] if responses else None))
        return found

    def retry_messages(
        self, message_ids: Sequence[uuid.UUID], *, all_dead: bool = False
    ) -> list[uuid.UUID]:
        """Make these messages (and with ``all_dead`` every dead letter) due now, their
        refusals and backoff forgotten; their responses stay. All or none: an unknown id is
        NOT_FOUND, a sent message FAILED_PRECONDITION."""
        if not message_ids and not all_dead:
            raise InvalidArgumentError(
                "message_ids: name at least one message, or ask for all_dead"
            )
        with self._tx() as conn:
            wanted = list(dict.fromkeys(message_ids))
            rows = conn.execute(
                "SELECT id, sent_at FROM messages WHERE id = ANY(%s) FOR UPDATE", (wanted,)
            ).fetchall()
            known = {row["id"]: row["sent_at"] for row in rows}
            for message_id in wanted:
                if message_id not in known:
                    raise NotFoundError(f"message_ids: no message {message_id}")
                if known[message_id] is not None:
                    raise FailedPreconditionError(
                        f"message_ids: message {message_id} was sent at "
                        f"{known[message_id].isoformat()}; there is nothing to retry"
                    )
            if all_dead:
                dead = conn.execute(
                    """SELECT id FROM messages WHERE sent_at IS NULL AND dead_at IS NOT NULL
                       ORDER BY dead_at, id FOR UPDATE"""
                ).fetchall()
                wanted += [row["id"] for row in dead if row["id"] not in known]
            conn.execute(
                """UPDATE messages SET dead_at = NULL, refusals = 0, failed_tries = 0,
                       next_attempt_at = NULL
                   WHERE id = ANY(%s)""",
                (wanted,),
            )
        return wanted

    def list_responses(
        self,
        message_id: uuid.UUID | None,
        status: schema.ResponseStatus | None = None,
        limit: int = 1,
    ) -> list[schema.Response]:
        """One message's responses, oldest first; or, without a message, the newest ``limit``."""
        where, params = [], []
        if status is not None:
            where.append("status = %s")
            params.append(status.value)
        with self._tx() as conn:
            if message_id is not None:
                exists = conn.execute(
                    "SELECT 1 FROM messages WHERE id = %s", (message_id,)
                ).fetchone()
                if exists is None:
                    raise NotFoundError(f"message_id: no message {message_id}")
                where.append("message_id = %s")
                params.append(message_id)
                order, tail = "received_at, id", ""
            else:
                order, tail = "received_at DESC, id DESC", " LIMIT %s"
            query = (
                f"SELECT {_RESPONSE_COLUMNS} FROM responses"
                + (" WHERE " + " AND ".join(where) if where else "")
                + f" ORDER BY {order}{tail}"
            )
            rows = conn.execute(
                query, (*params, limit) if message_id is None else tuple(params)
            ).fetchall()
        return _readable(schema.Response, "responses", rows, name_only=("id",))

    # --- the device --------------------------------------------------------------------------

    def device_id(self) -> str | None:
        """The device id this database keeps, or None before one was kept."""
        with self._tx() as conn:
            row = conn.execute("SELECT device_id FROM device").fetchone()
        return row["device_id"] if row else None

    def newest_recording_device_id(self) -> str | None:
        """The device id the newest recording carries (None: no recording yet)."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT device_id FROM recordings ORDER BY started_at DESC LIMIT 1"
            ).fetchone()
        return row["device_id"] if row else None

    def keep_device_id(self, device_id: str) -> str:
        """Keep ``device_id`` unless the database already holds one; the id it holds afterwards."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO device (device_id) VALUES (%s) ON CONFLICT (singleton) DO NOTHING",
                (device_id,),
            )
            return conn.execute("SELECT device_id FROM device").fetchone()["device_id"]
