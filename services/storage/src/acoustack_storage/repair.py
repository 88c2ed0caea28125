"""Repairing stored rows that the read side refuses (migration 0003).

Before the store checked every field it writes, a request could leave a row that no read can
return: a path over the length limit, a control character in a name, a time past what Python holds.
Each row is validated here with the very records the read side uses (``acoustack.schema``); a row
that fails is repaired field by field, and each value replaced is kept in ``quarantined_values``
with what was wrong with it, so nothing is lost:

- a text too long is cut to its limit; control characters become U+FFFD; an empty required text
  becomes "unknown";
- a time outside the stored range is moved to the nearest end of it (in SQL, first: a time past
  year 9999 cannot even be loaded into Python);
- a recording's path that cannot be read back is replaced by a placeholder no file can have, and
  the recording is marked failed (unless it is deleted), its reason saying where the path went.

A row this cannot repair (a rule across fields, a number out of range) is left as it is and
logged; listings skip it with a warning naming it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, ValidationError

from acoustack import limits, schema
from acoustack.errors import problem_of, quote

log = logging.getLogger(__name__)

QUARANTINE_TABLE = """
CREATE TABLE IF NOT EXISTS quarantined_values (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_name     text NOT NULL,
    row_id         text NOT NULL,
    column_name    text,            -- NULL: the whole row, left as it was
    original_value text,            -- as text (times in ISO 8601)
    problem        text NOT NULL,
    action         text NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now()
)"""

# Where a recording's unreadable path goes: under /dev/null, which is no directory, so no file can
# ever be there and no file manager acts on it.
PLACEHOLDER_DIR = "/dev/null/acoustack-quarantine"

_TABLES: dict[str, tuple[type[BaseModel], str]] = {
    "deployments": (schema.Deployment, "id, name, latitude, longitude, started_at, ended_at"),
    "recordings": (
        schema.Recording,
        "id, deployment_id, device_id, source_id, path, started_at, duration_s, "
        "capture_samplerate_hz, channels, time_expansion, status, failure_reason, created_at",
    ),
    "messages": (schema.Message, "id, content, created_at, priority, attempts, last_attempt_at"),
    "responses": (schema.Response, "id, message_id, status, content, received_at"),
}
_NOT_IN_RECORD = {"responses": ("id",)}  # selected to name the row only
# Every stored time the read side loads; a recording's start is copied into its outputs' rows.
_TIME_COLUMNS = {
    "deployments": ("started_at", "ended_at"),
    "recordings": ("started_at", "created_at"),
    "model_outputs": ("recording_started_at", "created_at"),
    "messages": ("created_at", "last_attempt_at"),
    "responses": ("received_at",),
}
_LATEST_KEPT = limits.LATEST_TIME - dt.timedelta(microseconds=1)


@dataclass
class RepairReport:
    repaired: list[str] = field(default_factory=list)  # "table row id"
    left: list[str] = field(default_factory=list)
    values_kept: int = 0


def repair_unreadable_rows(conn: psycopg.Connection) -> RepairReport:
    """Find and repair every row the read side refuses; in the caller's transaction."""
    conn.execute(QUARANTINE_TABLE)
    report = RepairReport()
    for table, columns in _TIME_COLUMNS.items():
        report.values_kept += _clamp_times(conn, table, columns)
    for table in _TABLES:
        for row, errors in _unreadable(conn, table):
            _repair(conn, table, row, errors, report)
    if report.repaired or report.left:
        log.warning(
            "repaired %d stored row(s) the read side refused (%d value(s) kept in "
            "quarantined_values); left %d as they were: %s",
            len(report.repaired),
            report.values_kept,
            len(report.left),
            ", ".join(report.left) or "none",
        )
    return report


def _clamp_times(conn: psycopg.Connection, table: str, columns: tuple[str, ...]) -> int:
    """Move every time outside the stored range to the nearest end of it, keeping the original;
    all of a row's times in one UPDATE, so a check across them (ended after started) holds."""
    bounds = {"earliest": limits.EARLIEST_TIME, "latest": limits.LATEST_TIME, "kept": _LATEST_KEPT}
    outside = [f"({c} < %(earliest)s OR {c} >= %(latest)s)" for c in columns]
    kept = 0
    for column, test in zip(columns, outside, strict=True):
        kept += conn.execute(
            f"""INSERT INTO quarantined_values
                    (table_name, row_id, column_name, original_value, problem, action)
                SELECT %(table)s, id::text, %(column)s, {column}::text,
                       'outside the times the store keeps', 'moved to the nearest end of them'
                FROM {table} WHERE {test}""",
            {**bounds, "table": table, "column": column},
        ).rowcount
    clamp = ", ".join(
        f"""{c} = CASE WHEN {c} < %(earliest)s THEN %(earliest)s
                       WHEN {c} >= %(latest)s THEN %(kept)s ELSE {c} END"""
        for c in columns
    )
    changed = conn.execute(
        f"UPDATE {table} SET {clamp} WHERE {' OR '.join(outside)}", bounds
    ).rowcount
    if changed:
        log.warning("%s: moved the times of %d row(s) into the stored range", table, changed)
    return kept


def _record_values(table: str, row: dict) -> dict:
    skip = _NOT_IN_RECORD.get(table, ())
    return {k: v for k, v in row.items() if k not in skip}


def _errors(table: str, row: dict) -> list[dict]:
    try:
        _TABLES[table][0].model_validate(_record_values(table, row))
    except ValidationError as exc:
        return exc.errors()
    return []


def _unreadable(conn: psycopg.Connection, table: str) -> list[tuple[dict, list[dict]]]:
    """The rows of ``table`` the read side refuses (a server-side cursor: a device's tables may
    be larger than its memory)."""
    columns = _TABLES[table][1]
    found = []
    with conn.cursor(name=f"repair_{table}", row_factory=dict_row) as cursor:
        cursor.itersize = 2000
        cursor.execute(f"SELECT {columns} FROM {table}")
        for row in cursor:
            errors = _errors(table, row)
            if errors:
                found.append((row, errors))
    return found


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


def _fixed_value(error: dict, value: Any) -> Any:
    """The value repaired for this error; None when this cannot repair it."""
    kind = error["type"]
    if kind == "time_range" and isinstance(value, dt.datetime):
        return min(max(value, limits.EARLIEST_TIME), _LATEST_KEPT)
    if not isinstance(value, str):
        return None
    pattern = (error.get("ctx") or {}).get("pattern")
    if kind == "string_pattern_mismatch" and pattern in (limits.LINE_PATTERN, limits.TEXT_PATTERN):
        # A control character: free text keeps its tabs and line breaks, a one-line field loses
        # them too.
        return limits.clean_text(value, one_line=pattern == limits.LINE_PATTERN)
    if kind == "string_too_long":
        return value[: error["ctx"]["max_length"]]
    if kind in ("string_too_short", "missing"):
        return "unknown"
    return None


def _repair(
    conn: psycopg.Connection, table: str, row: dict, errors: list[dict], report: RepairReport
) -> None:
    name = f"{table} row {row['id']}"
    original = dict(row)
    changes: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for _ in range(4):  # a repair may reveal another problem in the same value
        unfixed = []
        for error in errors:
            column = error["loc"][0] if error["loc"] else None
            if table == "recordings" and column == "path":
                changes.update(_path_placeholder(row))
                problems.setdefault("path", problem_of(error))
                continue
            value = changes.get(column, row.get(column)) if column else None
            fixed = _fixed_value(error, value) if column else None
            if fixed is None:
                unfixed.append(error)
                continue
            changes[column] = fixed
            problems.setdefault(column, problem_of(error))
        errors = _errors(table, {**row, **changes})
        if not errors or unfixed:
            break
    if errors:
        described = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'row'}: {problem_of(e)}" for e in errors
        )
        log.error("%s cannot be read back and cannot be repaired: %s", name, described)
        _keep(conn, table, row["id"], None, None, described, "left as it was; listings skip it")
        report.left.append(name)
        return
    if "path" in problems:
        changes["failure_reason"] = _path_note(original, problems["path"])
    for column, value in changes.items():
        if value == original.get(column):
            continue
        problem = problems.get(column, "replaced as its recording's path was")
        _keep(
            conn,
            table,
            row["id"],
            column,
            _as_text(original.get(column)),
            problem,
            f"replaced with {quote(_as_text(value) or '')}",
        )
        report.values_kept += 1
    assignments = ", ".join(f"{column} = %s" for column in changes)
    conn.execute(f"UPDATE {table} SET {assignments} WHERE id = %s", (*changes.values(), row["id"]))
    log.warning("repaired %s: %s", name, ", ".join(sorted(problems)))
    report.repaired.append(name)


def _path_placeholder(row: dict) -> dict[str, Any]:
    changes: dict[str, Any] = {"path": f"{PLACEHOLDER_DIR}/{row['id']}"}
    if row["status"] != schema.RecordingStatus.DELETED.value:
        changes["status"] = schema.RecordingStatus.FAILED.value
    return changes


def _path_note(row: dict, problem: str) -> str:
    note = (
        f"its stored path could not be read back ({problem}); the path is kept in "
        f"quarantined_values (recordings, {row['id']})"
    )
    return note[: limits.REASON_CHARS]


def _keep(
    conn: psycopg.Connection,
    table: str,
    row_id: Any,
    column: str | None,
    original: str | None,
    problem: str,
    action: str,
) -> None:
    conn.execute(
        """INSERT INTO quarantined_values
               (table_name, row_id, column_name, original_value, problem, action)
           VALUES (%s, %s, %s, %s, %s, %s)""",
        (table, str(row_id), column, original, problem, action),
    )
