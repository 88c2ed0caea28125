"""What storage tells Prometheus, read from the database at each scrape: the outbox by delivery
state, the recordings by status, and the age of the newest recording (a recorder that stopped
shows as a growing age)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from acoustack import prometheus, schema
from acoustack_storage.repository import PostgresStore


def read_metrics(store: PostgresStore) -> Iterable:
    counts = store.count_messages()
    yield prometheus.gauge(
        prometheus.OUTBOX_MESSAGES,
        "Messages in the outbox by delivery state (due, backing_off, dead, sent)",
        {state.value: getattr(counts, state.value) for state in schema.MessageState},
        "state",
    )
    by_status, newest_end = store.recordings_by_status()
    yield prometheus.gauge(
        prometheus.STORED_RECORDINGS,
        "Recordings storage keeps, by status (temporary, saved, deleted, failed)",
        {status.value: by_status.get(status.value, 0) for status in schema.RecordingStatus},
        "status",
    )
    if newest_end is not None:
        age = (dt.datetime.now(dt.UTC) - newest_end).total_seconds()
        yield prometheus.gauge(
            prometheus.LAST_RECORDING_AGE, "Seconds since the newest recording ended", max(0, age)
        )


def collector(store: PostgresStore) -> prometheus.ScrapeCollector:
    return prometheus.ScrapeCollector(lambda: read_metrics(store), "storage database")
