"""Alarms that fire once per episode: a device silent, degraded, or recording without detecting.

An episode is one row of ``alarms``, open while its rule holds: a unique index on the open ones
means a rule that holds at every pass opens it once, and a rule that stops holding closes it (the
next time it holds is a new episode). Each opening and each closing is sent on once by every
notifier that is configured (an HTTP webhook, an MQTT topic) and marked sent; one not sent (the
webhook down) is tried again at the next pass. One replica evaluates at a time (an advisory lock),
so two replicas never notify the same change twice.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from psycopg.rows import dict_row

from acoustack_hub.store import _ALARM_LOCK, HubStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlarmRules:
    heartbeat_interval_s: float = 60.0
    silent_intervals: int = 3
    detections_stopped_s: float = 6 * 3600.0
    recording_fresh_s: float = 600.0

    @property
    def silent_after_s(self) -> float:
        return self.heartbeat_interval_s * self.silent_intervals


_WANTED = """
    SELECT device_id, 'silent' AS kind,
           format('no message for %%s s (%%s heartbeat intervals of %%s s)',
                  round(extract(epoch FROM %(now)s - last_seen)),
                  %(intervals)s, %(interval)s) AS detail
    FROM devices WHERE last_seen < %(now)s - make_interval(secs => %(silent_s)s)
    UNION ALL
    SELECT device_id, 'degraded', status FROM devices WHERE status LIKE 'degraded%%'
    UNION ALL
    SELECT device_id, 'detections_stopped',
           format('no detection since %%s while recordings go on (last recording %%s s ago)',
                  to_char(last_detection_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                  round((metrics ->> 'last_recording_age')::float8))
    FROM devices
    WHERE last_detection_at < %(now)s - make_interval(secs => %(stopped_s)s)
      AND last_heartbeat_at >= %(now)s - make_interval(secs => %(silent_s)s)
      AND jsonb_typeof(metrics -> 'last_recording_age') = 'number'
      AND (metrics ->> 'last_recording_age')::float8 < %(fresh_s)s
"""


def evaluate(store: HubStore, rules: AlarmRules, now: dt.datetime) -> bool:
    """Opens the episodes whose rule holds now and closes those whose rule no longer does.
    False when another replica is evaluating (nothing done)."""
    params = {
        "now": now,
        "silent_s": rules.silent_after_s,
        "intervals": rules.silent_intervals,
        "interval": rules.heartbeat_interval_s,
        "stopped_s": rules.detections_stopped_s,
        "fresh_s": rules.recording_fresh_s,
    }
    with store.pool.connection() as conn, conn.transaction():
        if not conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_ALARM_LOCK,)).fetchone()[0]:
            return False
        conn.execute(f"CREATE TEMP TABLE wanted ON COMMIT DROP AS {_WANTED}", params)
        conn.execute(
            """INSERT INTO alarms (device_id, kind, detail, opened_at)
               SELECT device_id, kind, detail, %s FROM wanted
               ON CONFLICT (device_id, kind) WHERE closed_at IS NULL DO NOTHING""",
            (now,),
        )
        conn.execute(
            """UPDATE alarms a SET closed_at = %s
               WHERE closed_at IS NULL AND NOT EXISTS (
                   SELECT 1 FROM wanted w WHERE w.device_id = a.device_id AND w.kind = a.kind)""",
            (now,),
        )
    return True


class Notifier(Protocol):
    name: str

    def send(self, event: dict[str, Any]) -> None:
        """Raises when the event was not taken."""


@dataclass
class WebhookNotifier:
    url: str
    timeout_s: float = 10.0
    name: str = "webhook"

    def send(self, event: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.url,
            data=json.dumps(event).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            if not 200 <= response.status < 300:
                raise RuntimeError(f"HTTP {response.status}")


@dataclass
class MqttNotifier:
    """Publishes on the hub's broker through a publish function (the subscriber's client)."""

    topic: str
    publish: Callable[[str, str], None]
    name: str = "mqtt"

    def send(self, event: dict[str, Any]) -> None:
        self.publish(self.topic, json.dumps(event))


def _event(row: dict[str, Any], state: str) -> dict[str, Any]:
    return {
        "alarm_id": row["id"],
        "state": state,  # "open" or "closed"
        "device_id": row["device_id"],
        "kind": row["kind"],
        "detail": row["detail"],
        "opened_at": row["opened_at"].isoformat(),
        "closed_at": row["closed_at"].isoformat() if row["closed_at"] else None,
    }


def notify_pending(store: HubStore, notifiers: Sequence[Notifier], now: dt.datetime) -> int:
    """Sends every opening and closing not sent yet; returns how many were sent."""
    sent = 0
    with store.pool.connection() as conn, conn.transaction():
        if not conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_ALARM_LOCK,)).fetchone()[0]:
            return 0
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                """SELECT * FROM alarms
                       WHERE notified_open_at IS NULL
                          OR (closed_at IS NOT NULL AND notified_close_at IS NULL)
                       ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED"""
            ).fetchall()
        for row in rows:
            for state, column in (("open", "notified_open_at"), ("closed", "notified_close_at")):
                if row[column] is not None or (state == "closed" and row["closed_at"] is None):
                    continue
                errors = []
                for notifier in notifiers:
                    try:
                        notifier.send(_event(row, state))
                    except Exception as exc:
                        errors.append(f"{notifier.name}: {exc}")
                if errors:
                    log.warning("alarm %s %s not sent: %s", row["id"], state, errors)
                    conn.execute(
                        "UPDATE alarms SET notify_error = %s WHERE id = %s",
                        ("; ".join(errors)[:1000], row["id"]),
                    )
                    break  # the closing waits for its opening
                conn.execute(
                    f"UPDATE alarms SET {column} = %s, notify_error = NULL WHERE id = %s",
                    (now, row["id"]),
                )
                sent += 1
    return sent
