"""The central Postgres: messages stored once by id, detections, the device registry, alarms.

A batch is copied (COPY, far cheaper per row than any parameter list) into temporary staging
tables of the connection, then inserted from them in one statement with ON CONFLICT DO NOTHING,
rows in key order, so two replicas writing overlapping batches wait for each other instead of
deadlocking.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from acoustack.migrations import apply_migrations, bundled_migrations
from acoustack_hub.payloads import Accepted, Rejected

log = logging.getLogger(__name__)

_MIGRATION_LOCK = 0x68756231  # "hub1": shared by every replica
_ALARM_LOCK = 0x68756232  # one replica evaluates the alarm rules at a time


@dataclass(frozen=True)
class BatchResult:
    stored: int
    duplicates: int
    rejected: int


def migrate(conn: psycopg.Connection) -> list[int]:
    return apply_migrations(conn, bundled_migrations("acoustack_hub.migrations"), _MIGRATION_LOCK)


def _staging(conn: psycopg.Connection) -> None:
    """Each pooled connection's own staging tables, emptied at every commit."""
    conn.execute(
        "CREATE TEMP TABLE stage_messages (LIKE messages INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    conn.commit()


class HubStore:
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    @classmethod
    def open(cls, url: str, max_size: int = 8, wait_s: float = 60.0) -> HubStore:
        """Connects (waiting up to wait_s for a database still starting) and migrates."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                with psycopg.connect(url, connect_timeout=5) as conn:
                    applied = migrate(conn)
                break
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the hub's database was not reachable within {wait_s:.0f} s: {exc} "
                        "(check HUB_DATABASE_URL and that Postgres is running)"
                    ) from None
                log.warning("waiting for the database: %s", exc)
                time.sleep(1.0)
        log.info("database ready; migrations applied now: %s", applied or "none")
        pool = ConnectionPool(
            url, min_size=1, max_size=max_size, open=True, timeout=30, configure=_staging
        )
        return cls(pool)

    def close(self) -> None:
        self.pool.close()

    def ping(self) -> bool:
        try:
            with self.pool.connection(timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except Exception:
            return False

    # --- ingest ---

    def store_batch(self, items: Sequence[Accepted | Rejected]) -> BatchResult:
        """Everything in one transaction: what is already stored stays as it is."""
        accepted = sorted(
            {i.id: i for i in items if isinstance(i, Accepted)}.values(), key=lambda a: a.id
        )
        rejected = [i for i in items if isinstance(i, Rejected)]
        with self.pool.connection() as conn, conn.transaction():
            new_ids = self._insert_messages(conn, accepted)
            fresh = [a for a in accepted if a.id in new_ids]
            self._upsert_devices(conn, fresh)
            stored_rejected = self._insert_rejected(conn, rejected)
        return BatchResult(len(fresh), len(items) - len(fresh) - len(rejected), stored_rejected)

    def _insert_messages(self, conn: psycopg.Connection, rows: list[Accepted]) -> set:
        """The messages not stored yet, and a row per detection of each (made from the payload,
        which payloads.py checked); returns their ids."""
        if not rows:
            return set()
        cursor = conn.cursor()
        with cursor.copy(
            "COPY stage_messages (id, device_id, kind, via, sent_at, received_at, payload) "
            "FROM STDIN"
        ) as copy:
            for r in rows:
                copy.write_row((r.id, r.device_id, r.kind, r.via, r.sent_at, r.received_at,
                                r.payload))  # fmt: skip
        # The detections' foreign key is checked at the statement's end, when the messages of
        # the first part are in.
        cursor.execute(
            """WITH new AS (
                   INSERT INTO messages (id, device_id, kind, via, sent_at, received_at, payload)
                   SELECT id, device_id, kind, via, sent_at, received_at, payload
                   FROM stage_messages ORDER BY id
                   ON CONFLICT (id) DO NOTHING RETURNING id),
               detections_of_new AS (
                   INSERT INTO detections (id, message_id, device_id, recording_id, model_name,
                                           detected_at, species, score, tags)
                   SELECT (d ->> 'id')::uuid, m.id, m.device_id,
                          (m.payload ->> 'recording_id')::uuid, m.payload -> 'model' ->> 'name',
                          m.sent_at,
                          (SELECT t ->> 'value' FROM jsonb_array_elements(d -> 'tags') t
                           WHERE t ->> 'key' = 'species'
                           ORDER BY COALESCE((t ->> 'confidence')::float8, 1) DESC LIMIT 1),
                          (d ->> 'detection_score')::float8, COALESCE(d -> 'tags', '[]')
                   FROM stage_messages m JOIN new ON new.id = m.id
                   CROSS JOIN LATERAL jsonb_array_elements(m.payload -> 'detections') d
                   WHERE m.kind = 'detection'
                   ORDER BY 1
                   ON CONFLICT (id) DO NOTHING)
               SELECT id FROM new"""
        )
        return {row[0] for row in cursor.fetchall()}

    def _upsert_devices(self, conn: psycopg.Connection, rows: list[Accepted]) -> None:
        devices: dict[str, dict[str, Any]] = {}
        for m in rows:
            d = devices.setdefault(
                m.device_id,
                {"first": m.received_at, "last": m.received_at, "hb": None, "status": None,
                 "metrics": None, "version": None, "detection": None, "where": None},
            )  # fmt: skip
            d["first"], d["last"] = min(d["first"], m.received_at), max(d["last"], m.received_at)
            d["version"] = m.software_version or d["version"]
            if m.kind == "heartbeat" and (d["hb"] is None or m.sent_at > d["hb"]):
                d["hb"], d["status"], d["metrics"] = m.sent_at, m.status, m.metrics
                d["where"] = m.deployment
            if m.detections and (d["detection"] is None or m.sent_at > d["detection"]):
                d["detection"] = m.sent_at
        if not devices:
            return
        ids = sorted(devices)
        column = lambda key: [devices[i][key] for i in ids]  # noqa: E731
        where = [devices[i]["where"] for i in ids]
        place = lambda key: [None if w is None else getattr(w, key) for w in where]  # noqa: E731
        # A heartbeat older than the one kept (out of order, a backlog) changes only last_seen.
        conn.execute(
            """INSERT INTO devices AS d (device_id, first_seen, last_seen, last_heartbeat_at,
                                         status, metrics, software_version, last_detection_at,
                                         deployment_id, deployment_name, latitude, longitude)
               SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[],
                                    %s::timestamptz[], %s::text[], %s::text[]::jsonb[],
                                    %s::text[], %s::timestamptz[],
                                    %s::uuid[], %s::text[], %s::float8[], %s::float8[])
               ON CONFLICT (device_id) DO UPDATE SET
                 first_seen = LEAST(d.first_seen, EXCLUDED.first_seen),
                 last_seen = GREATEST(d.last_seen, EXCLUDED.last_seen),
                 status = CASE WHEN EXCLUDED.last_heartbeat_at > d.last_heartbeat_at
                               OR d.last_heartbeat_at IS NULL
                          THEN COALESCE(EXCLUDED.status, d.status) ELSE d.status END,
                 metrics = CASE WHEN EXCLUDED.last_heartbeat_at > d.last_heartbeat_at
                                OR d.last_heartbeat_at IS NULL
                           THEN COALESCE(EXCLUDED.metrics, d.metrics) ELSE d.metrics END,
                 -- The newest heartbeat's deployment; one without (older messengers, storage
                 -- away) leaves the last known place.
                 deployment_id = CASE WHEN EXCLUDED.deployment_id IS NOT NULL
                          AND (EXCLUDED.last_heartbeat_at > d.last_heartbeat_at
                               OR d.last_heartbeat_at IS NULL)
                     THEN EXCLUDED.deployment_id ELSE d.deployment_id END,
                 deployment_name = CASE WHEN EXCLUDED.deployment_id IS NOT NULL
                          AND (EXCLUDED.last_heartbeat_at > d.last_heartbeat_at
                               OR d.last_heartbeat_at IS NULL)
                     THEN EXCLUDED.deployment_name ELSE d.deployment_name END,
                 latitude = CASE WHEN EXCLUDED.deployment_id IS NOT NULL
                          AND (EXCLUDED.last_heartbeat_at > d.last_heartbeat_at
                               OR d.last_heartbeat_at IS NULL)
                     THEN EXCLUDED.latitude ELSE d.latitude END,
                 longitude = CASE WHEN EXCLUDED.deployment_id IS NOT NULL
                          AND (EXCLUDED.last_heartbeat_at > d.last_heartbeat_at
                               OR d.last_heartbeat_at IS NULL)
                     THEN EXCLUDED.longitude ELSE d.longitude END,
                 last_heartbeat_at = GREATEST(d.last_heartbeat_at, EXCLUDED.last_heartbeat_at),
                 software_version = COALESCE(EXCLUDED.software_version, d.software_version),
                 last_detection_at = GREATEST(d.last_detection_at, EXCLUDED.last_detection_at)""",
            (
                ids,
                column("first"),
                column("last"),
                column("hb"),
                column("status"),
                column("metrics"),
                column("version"),
                column("detection"),
                place("id"),
                place("name"),
                place("latitude"),
                place("longitude"),
            ),
        )

    def _insert_rejected(self, conn: psycopg.Connection, rows: list[Rejected]) -> int:
        if not rows:
            return 0
        cursor = conn.execute(
            """INSERT INTO rejected_messages (message_id, device_id, via, topic, reason,
                                              size_bytes, payload_head, received_at)
               SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                                    %s::bigint[], %s::text[], %s::timestamptz[])
               ON CONFLICT (message_id) WHERE message_id IS NOT NULL DO NOTHING""",
            (
                [r.message_id for r in rows],
                [r.device_id for r in rows],
                [r.via for r in rows],
                [r.topic for r in rows],
                [r.reason for r in rows],
                [r.size_bytes for r in rows],
                [r.payload_head for r in rows],
                [r.received_at for r in rows],
            ),
        )
        return cursor.rowcount

    # --- queries (the HTTP API, the fleet pages) ---

    def _all(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(sql, params).fetchall()

    def devices(self) -> list[dict[str, Any]]:
        return self._all(
            """SELECT d.*, COALESCE(array_agg(a.kind ORDER BY a.kind)
                                   FILTER (WHERE a.id IS NOT NULL), '{}') AS open_alarms
               FROM devices d LEFT JOIN alarms a
                 ON a.device_id = d.device_id AND a.closed_at IS NULL
               GROUP BY d.device_id ORDER BY d.device_id"""
        )

    def device(self, device_id: str) -> dict[str, Any] | None:
        rows = [d for d in self.devices() if d["device_id"] == device_id]
        return rows[0] if rows else None

    def detections(
        self,
        *,
        device_id: str | None = None,
        species: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        min_score: float | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        return self._all(
            """SELECT id, device_id, recording_id, model_name, detected_at, species, score, tags
               FROM detections
               WHERE (%(device)s::text IS NULL OR device_id = %(device)s)
                 AND (%(species)s::text IS NULL OR species = %(species)s)
                 AND (%(since)s::timestamptz IS NULL OR detected_at >= %(since)s)
                 AND (%(until)s::timestamptz IS NULL OR detected_at < %(until)s)
                 AND (%(score)s::float8 IS NULL OR score >= %(score)s)
               ORDER BY detected_at DESC, id LIMIT %(limit)s""",
            {"device": device_id, "species": species, "since": since, "until": until,
             "score": min_score, "limit": limit},
        )  # fmt: skip

    def species_over_time(
        self, bucket: str, since: dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        """Detections per species per hour or day across the fleet, on how many devices in
        each, and on how many over the whole span (devices_total)."""
        return self._all(
            """WITH chosen AS (
                   SELECT * FROM detections
                   WHERE %(since)s::timestamptz IS NULL OR detected_at >= %(since)s),
               totals AS (
                   SELECT species, count(DISTINCT device_id) AS devices_total
                   FROM chosen GROUP BY species)
               SELECT date_trunc(%(bucket)s, c.detected_at) AS bucket, c.species,
                      count(*) AS detections, count(DISTINCT c.device_id) AS devices,
                      min(t.devices_total) AS devices_total
               FROM chosen c JOIN totals t ON t.species IS NOT DISTINCT FROM c.species
               GROUP BY 1, 2 ORDER BY 1, 2""",
            {"bucket": bucket, "since": since},
        )

    def alarms(self, open_only: bool = False) -> list[dict[str, Any]]:
        return self._all(
            """SELECT id, device_id, kind, detail, opened_at, closed_at, notified_open_at,
                      notified_close_at, notify_error
               FROM alarms WHERE NOT %s OR closed_at IS NULL
               ORDER BY opened_at DESC, id DESC LIMIT 1000""",
            (open_only,),
        )

    def rejected(self, limit: int = 100) -> list[dict[str, Any]]:
        return self._all(
            """SELECT id, message_id, device_id, via, topic, reason, size_bytes, payload_head,
                      received_at
               FROM rejected_messages ORDER BY id DESC LIMIT %s""",
            (limit,),
        )
