"""Recording conditions: whether to record now. All configured conditions must pass.

Each answers with a Verdict that says why, so a recorder that stays silent can tell the heartbeat
the reason ("outside 20:00–06:00 Europe/London", "free disk 1.2 GB < 2 GB"), and nobody loses a night
wondering. The time windows themselves live in ``acoustack.time_windows``, shared with file
management.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from acoustack.time_windows import (
    DailyWindow,
    DailyWindows,
    Site,
    SunEvent,
    SunWindow,
    Verdict,
)

__all__ = [
    "AllOf",
    "DailyWindow",
    "DailyWindows",
    "FreeDiskSpace",
    "RecordingCondition",
    "Site",
    "SunEvent",
    "SunWindow",
    "Verdict",
]


class RecordingCondition(Protocol):
    def check(self, now: dt.datetime, site: Site | None) -> Verdict: ...


@dataclass(frozen=True)
class FreeDiskSpace:
    """Record only while the recordings' file system keeps this much free."""

    path: Path
    minimum_bytes: int
    what: str = "disk"  # what `acoustack check` calls it

    def check(self, now: dt.datetime, site: Site | None = None) -> Verdict:
        try:
            free = shutil.disk_usage(self.path).free
        except OSError as exc:
            return Verdict(False, f"cannot read free space of {self.path}: {exc.strerror}")
        if free < self.minimum_bytes:
            return Verdict(
                False,
                f"free disk {free / 1e9:.2f} GB < {self.minimum_bytes / 1e9:.2f} GB at {self.path}",
            )
        return Verdict(True, f"free disk {free / 1e9:.2f} GB")


@dataclass(frozen=True)
class AllOf:
    conditions: Sequence[RecordingCondition]

    def check(self, now: dt.datetime, site: Site | None) -> Verdict:
        reasons = []
        for condition in self.conditions:
            verdict = condition.check(now, site)
            if not verdict:
                return verdict
            reasons.append(verdict.reason)
        return Verdict(True, "; ".join(reasons) or "no conditions")
