"""Summaries of what was detected over a window (acoupi's two summarisers, in one message).

The window is the last complete interval, aligned on the epoch as the scheduler's slots are: a
summary run at 13:00:00.2 with a one-hour interval covers recordings started from 12:00 to
13:00. So windows follow one another without gaps or overlaps, and a run repeated or retried
inside the same interval builds the same message with the same id, which the outbox keeps once.

Per species (the value of each tag with key ``tag_key``, the program's ``summary.tag_key``,
scored by that tag's confidence, as acoupi does; the content's ``species`` keeps its name whatever
the key): count, mean, min and max score, and how many fall in each confidence band
(``low``: [b0, b1), ``mid``: [b1, b2), ``high``: [b2, 1]; below b0 in none). Detections of
recordings whose detection finishes after the run are not counted (they belong to no later
window either).

Content (JSON)::

    {"kind": "summary", "device_id": "pi-…", "window": {"start": "…Z", "end": "…Z"},
     "detections": 12, "tag_key": "species",
     "band_edges": {"low": [0.1, 0.5], "mid": [0.5, 0.9], "high": [0.9, 1.0]},
     "species": {"Myotis mystacinus": {"count": 3, "mean": 0.71, "min": 0.52, "max": 0.93,
                                       "bands": {"low": 0, "mid": 2, "high": 1}}},
     "truncated": false}
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

from acoustack import schema
from acoustack.clients import StoreClient
from acoustack.v1 import store_pb2 as spb

log = logging.getLogger(__name__)

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
SUMMARY_IDS = uuid.UUID("6d2b7a1c-93f4-4e0b-8c51-2f6a9e3d7b10")  # namespace of summary ids
BANDS = ("low", "mid", "high")
ONE_MICROSECOND = dt.timedelta(microseconds=1)


@dataclass
class _SpeciesStats:
    count: int = 0
    total: float = 0.0
    lowest: float = math.inf
    highest: float = -math.inf
    bands: list[int] = field(default_factory=lambda: [0, 0, 0])

    def add(self, score: float, band: int | None) -> None:
        self.count += 1
        self.total += score
        self.lowest = min(self.lowest, score)
        self.highest = max(self.highest, score)
        if band is not None:
            self.bands[band] += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "mean": round(self.total / self.count, 4),
            "min": round(self.lowest, 4),
            "max": round(self.highest, 4),
            "bands": dict(zip(BANDS, self.bands, strict=True)),
        }


class DetectionSummariser:
    """A Summariser (acoustack.components.types) over the detections in storage."""

    def __init__(
        self,
        store: StoreClient,
        interval_s: float,
        device_id: str,
        *,
        tag_key: str = "species",
        band_edges: tuple[float, float, float] = (0.1, 0.5, 0.9),
        page_size: int = 10_000,
        max_pages: int = 100,
    ) -> None:
        if not 0 <= band_edges[0] <= band_edges[1] <= band_edges[2] <= 1:
            raise ValueError(f"band_edges: {band_edges} must rise within 0..1")
        self.store = store
        self.interval = dt.timedelta(seconds=interval_s)
        self.device_id = device_id
        self.tag_key = tag_key
        self.band_edges = band_edges
        self.page_size = page_size
        self.max_pages = max_pages

    def window(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        slots = (now.astimezone(dt.UTC) - EPOCH) // self.interval
        end = EPOCH + slots * self.interval
        return end - self.interval, end

    def _band(self, score: float) -> int | None:
        low, mid, high = self.band_edges
        if score >= high:
            return 2
        if score >= mid:
            return 1
        return 0 if score >= low else None

    def build_summary(self, now: dt.datetime) -> schema.Message:
        start, end = self.window(now)
        species: dict[str, _SpeciesStats] = {}
        detections = 0
        started_from, truncated = start, True
        for _ in range(self.max_pages):
            hits = self.store.list_detections(
                started_from=started_from,
                started_to=end,
                limit=self.page_size,
                order=spb.SORT_ORDER_OLDEST_FIRST,
            )
            for hit in hits:
                detections += 1
                for predicted in hit.detection.tags:
                    if predicted.tag.key == self.tag_key:
                        score = predicted.confidence
                        stats = species.setdefault(predicted.tag.value, _SpeciesStats())
                        stats.add(score, self._band(score))
            if len(hits) < self.page_size:
                truncated = False
                break
            # Storage ends a page only after the last recording start it includes, so the next
            # page starts just after it.
            last = hits[-1].recording_started_at.ToDatetime(tzinfo=dt.UTC)
            started_from = last + ONE_MICROSECOND
        if truncated:
            log.warning(
                "summary %s..%s: more than %d detections; counted the first %d",
                start.isoformat(), end.isoformat(), self.max_pages * self.page_size, detections,
            )  # fmt: skip
        low, mid, high = self.band_edges
        content = {
            "kind": "summary",
            "device_id": self.device_id,
            "window": {"start": _iso(start), "end": _iso(end)},
            "detections": detections,
            "tag_key": self.tag_key,
            "band_edges": {"low": [low, mid], "mid": [mid, high], "high": [high, 1.0]},
            "species": {name: stats.as_json() for name, stats in sorted(species.items())},
            "truncated": truncated,
        }
        return schema.Message(
            id=uuid.uuid5(SUMMARY_IDS, f"{self.device_id}/{_iso(start)}/{_iso(end)}"),
            content=json.dumps(content, separators=(",", ":")),
        )


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
