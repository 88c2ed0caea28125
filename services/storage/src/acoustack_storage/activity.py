"""Activity: detections per time bucket per tag value (species), summed by Postgres from
detection_tag_counts, one row per output and value, written with each output."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
import zoneinfo
from collections import Counter
from dataclasses import dataclass

import psycopg
from google.protobuf.message import DecodeError

from acoustack import schema
from acoustack.errors import InvalidArgumentError, quote
from acoustack.v1 import types_pb2 as pb

log = logging.getLogger(__name__)

BUCKETS = ("hour", "day")
# A chart spans at most this long: a year of days, or fewer hours (hours × values stay small).
MAX_SPAN = {"hour": dt.timedelta(days=31), "day": dt.timedelta(days=400)}
BACKFILL_BATCH = 500


def tag_counts(output: pb.ModelOutput) -> Counter[tuple[str, str]]:
    """(key, value) → how many detections have that value as their most confident of that key."""
    counts: Counter[tuple[str, str]] = Counter()
    for detection in output.detections:
        best: dict[str, tuple[float, str]] = {}
        for tag in detection.tags:
            key, value = tag.tag.key, tag.tag.value
            if key and value and (key not in best or tag.confidence > best[key][0]):
                best[key] = (tag.confidence, value)
        for key, (_, value) in best.items():
            counts[(key, value)] += 1
    return counts


def insert_tag_counts(
    conn: psycopg.Connection,
    output_id: uuid.UUID,
    output: pb.ModelOutput,
    started_at: dt.datetime,
    deployment_id: uuid.UUID,
) -> None:
    rows = [
        (output_id, started_at, deployment_id, output.model_name, key, value, count)
        for (key, value), count in tag_counts(output).items()
    ]
    if rows:
        with conn.cursor() as cursor:
            cursor.executemany(
                """INSERT INTO detection_tag_counts (model_output_id, recording_started_at,
                       deployment_id, model_name, tag_key, tag_value, detections)
                   VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
                rows,
            )


def backfill_tag_counts(conn: psycopg.Connection) -> int:
    """Counts for every output that has none yet; how many outputs were counted."""
    done = 0
    last = uuid.UUID(int=0)
    while True:
        rows = conn.execute(
            """SELECT o.id, o.recording_started_at, o.deployment_id, o.document
               FROM model_outputs o
               WHERE o.id > %s AND o.detection_count > 0 AND NOT EXISTS (
                   SELECT 1 FROM detection_tag_counts c WHERE c.model_output_id = o.id)
               ORDER BY o.id LIMIT %s""",
            (last, BACKFILL_BATCH),
        ).fetchall()
        if not rows:
            break
        for row in rows:
            output_id, started_at, deployment_id, document = (
                (row["id"], row["recording_started_at"], row["deployment_id"], row["document"])
                if isinstance(row, dict)
                else row
            )
            last = output_id
            try:
                output = pb.ModelOutput.FromString(document)
            except DecodeError:
                log.warning("model output %s: its document does not parse; not counted", output_id)
                continue
            insert_tag_counts(conn, output_id, output, started_at, deployment_id)
            done += 1
    if done:
        log.info("activity: counted the detections of %d stored model outputs", done)
    return done


@dataclass(frozen=True)
class ActivityQuery:
    started_from: dt.datetime
    started_to: dt.datetime
    bucket: str = "hour"
    tag_key: str = "species"
    time_zone: str = "UTC"
    deployment_id: uuid.UUID | None = None
    model_name: str = ""

    def check(self) -> zoneinfo.ZoneInfo:
        if self.bucket not in BUCKETS:
            raise InvalidArgumentError(f"bucket: {quote(self.bucket)} is not one of hour, day")
        if self.started_to <= self.started_from:
            raise InvalidArgumentError("started_to: must be after started_from")
        if self.started_to - self.started_from > MAX_SPAN[self.bucket]:
            raise InvalidArgumentError(
                f"started_to: a chart by {self.bucket} spans at most "
                f"{MAX_SPAN[self.bucket].days} days"
            )
        schema.check_name(self.tag_key, "tag_key")
        if self.model_name:
            schema.check_name(self.model_name, "model_name")
        try:
            if len(self.time_zone) > 64:  # IANA names are short; a long one is a file name error
                raise ValueError("too long")
            return zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise InvalidArgumentError(
                f"time_zone: {quote(self.time_zone)} is not an IANA time zone (Europe/London, UTC)"
            ) from None


@dataclass(frozen=True)
class ActivityCount:
    bucket_start: dt.datetime
    tag_value: str
    detections: int


def count_detections(conn: psycopg.Connection, query: ActivityQuery) -> list[ActivityCount]:
    """Detections per bucket (local hours or days in ``time_zone``) per value, oldest first."""
    query.check()
    where = [
        "tag_key = %(key)s",
        "recording_started_at >= %(start)s",
        "recording_started_at < %(end)s",
    ]
    params: dict = {
        "key": query.tag_key,
        "start": query.started_from,
        "end": query.started_to,
        "bucket": query.bucket,
        "zone": query.time_zone,
    }
    if query.deployment_id is not None:
        where.append("deployment_id = %(deployment)s")
        params["deployment"] = query.deployment_id
    if query.model_name:
        where.append("model_name = %(model)s")
        params["model"] = query.model_name
    try:
        rows = _count(conn, where, params)
    except psycopg.errors.InvalidParameterValue:
        raise InvalidArgumentError(
            f"time_zone: {quote(query.time_zone)} is not a time zone the database knows"
        ) from None
    except psycopg.errors.DataError as exc:
        raise InvalidArgumentError(
            f"started_from: the range cannot be counted ({str(exc).strip()[:100]})"
        ) from None
    return [ActivityCount(row["bucket_start"], row["tag_value"], row["detections"]) for row in rows]


def _count(conn: psycopg.Connection, where: list[str], params: dict) -> list[dict]:
    rows = conn.execute(
        f"""SELECT date_trunc(%(bucket)s, recording_started_at AT TIME ZONE %(zone)s)
                       AT TIME ZONE %(zone)s AS bucket_start,
                   tag_value, sum(detections)::bigint AS detections
            FROM detection_tag_counts WHERE {" AND ".join(where)}
            GROUP BY 1, 2 ORDER BY 1, 2""",
        params,
    ).fetchall()
    return rows
