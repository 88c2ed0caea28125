"""Time windows a device acts in: daily windows in a time zone (wrapping midnight) and windows
around an event of the sun at the deployment's own coordinates. The recorder uses them to decide
when to record, and file management to decide which recordings to keep.

Each check answers with a Verdict that says why, so a silent recorder or a deleted recording can be
explained ("outside 20:00–06:00 Europe/London").

Sun windows are computed at the deployment's coordinates (acoupi computes them at Greenwich).
Where the sun never rises or never sets that day (polar night or day), or the deployment has no
coordinates, the window has no edge to hang on: ``when_undefined`` says whether the moment counts
as inside (the default: data rather than silence) or not, and the verdict says which happened.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from astral import Observer
from astral import sun as astral_sun

from acoustack import schema
from acoustack.errors import InvalidArgumentError
from acoustack.program_config import parse_sun_window, parse_windows


@dataclass(frozen=True)
class Site:
    latitude: float
    longitude: float

    @classmethod
    def of(cls, deployment: schema.Deployment) -> Site | None:
        """Where a deployment is; None when it was started without coordinates."""
        if deployment.latitude is None or deployment.longitude is None:
            return None
        return cls(deployment.latitude, deployment.longitude)


@dataclass(frozen=True)
class Verdict:
    record: bool
    reason: str

    def __bool__(self) -> bool:
        return self.record


def as_utc(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None:
        raise InvalidArgumentError("now: a naive time is ambiguous; give a time-zone aware one")
    return now.astimezone(dt.UTC)


def time_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgumentError(
            f"timezone: {name!r} is not a known time zone (use an IANA name like Europe/London)"
        ) from None


@dataclass(frozen=True)
class DailyWindow:
    start: dt.time
    end: dt.time

    def contains(self, local: dt.time) -> bool:
        if self.start == self.end:
            return True  # a window of a whole day
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # wraps midnight, e.g. 20:00–06:00

    def __str__(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


class DailyWindows:
    """Record during any of these local-time windows, in the given time zone (DST followed)."""

    @classmethod
    def from_text(cls, text: str, timezone: str) -> DailyWindows | None:
        """From a configuration's '20:00-06:00,04:30-05:30'; None when it is empty."""
        windows = [DailyWindow(start, end) for start, end in parse_windows(text)]
        return cls(windows, timezone) if windows else None

    def __init__(self, windows: Sequence[DailyWindow], timezone: str) -> None:
        if not windows:
            raise InvalidArgumentError("windows: give at least one (start–end, local time)")
        self.windows = tuple(windows)
        self.timezone = timezone
        self._zone = time_zone(timezone)

    def check(self, now: dt.datetime, site: Site | None = None) -> Verdict:
        local = as_utc(now).astimezone(self._zone)
        names = ", ".join(str(w) for w in self.windows)
        for window in self.windows:
            if window.contains(local.time()):
                return Verdict(True, f"inside {window} {self.timezone}")
        return Verdict(False, f"{local:%H:%M} is outside {names} {self.timezone}")


SunEvent = Literal["dawn", "sunrise", "sunset", "dusk"]


class SunWindow:
    """Record from ``before`` an event of the sun to ``after`` it, at the deployment's coordinates.

    dawn/dusk are civil twilight (the sun 6° below the horizon); sunrise/sunset the sun's upper
    edge on the horizon, refraction included.
    """

    @classmethod
    def from_text(cls, text: str) -> SunWindow | None:
        """From a configuration's 'dusk-30m+3h'; None when it is empty."""
        parsed = parse_sun_window(text)
        return None if parsed is None else cls(*parsed)

    def __init__(
        self,
        event: SunEvent,
        before: dt.timedelta = dt.timedelta(0),
        after: dt.timedelta = dt.timedelta(0),
        *,
        when_undefined: Literal["record", "skip"] = "record",
    ) -> None:
        if event not in ("dawn", "sunrise", "sunset", "dusk"):
            raise InvalidArgumentError(
                f"event: {event!r} is not one of dawn, sunrise, sunset, dusk"
            )
        if before < dt.timedelta(0) or after < dt.timedelta(0):
            raise InvalidArgumentError("before/after: give durations of zero or more")
        if before + after <= dt.timedelta(0):
            raise InvalidArgumentError("before/after: the window is empty; give a duration")
        self.event = event
        self.before = before
        self.after = after
        self.when_undefined = when_undefined

    def event_time(self, day: dt.date, site: Site) -> dt.datetime | None:
        """The event on this UTC day at the site, or None when the sun does not make it."""
        observer = Observer(latitude=site.latitude, longitude=site.longitude)
        compute = getattr(astral_sun, self.event)
        try:
            return compute(observer, date=day, tzinfo=dt.UTC)
        except ValueError:  # astral: the sun never reaches that elevation that day
            return None

    def check(self, now: dt.datetime, site: Site | None) -> Verdict:
        now = as_utc(now)
        if site is None:
            return self._undefined(
                f"the deployment has no coordinates, so its {self.event} is unknown"
            )
        found = False
        # The window can reach across midnight: look at the events of yesterday, today, tomorrow.
        for offset in (-1, 0, 1):
            moment = self.event_time(now.date() + dt.timedelta(days=offset), site)
            if moment is None:
                continue
            found = True
            if moment - self.before <= now <= moment + self.after:
                return Verdict(
                    True, f"within the {self.event} window ({self.event} {moment:%H:%M} UTC)"
                )
        if not found:
            where = f"{site.latitude:.2f}, {site.longitude:.2f}"
            return self._undefined(f"there is no {self.event} at {where} around {now:%Y-%m-%d}")
        return Verdict(
            False, f"outside the {self.event} window at {site.latitude:.2f}, {site.longitude:.2f}"
        )

    def _undefined(self, why: str) -> Verdict:
        if self.when_undefined == "record":
            return Verdict(True, f"{why}: recording anyway")
        return Verdict(False, f"{why}: not recording")


def recording_windows(
    daily_windows: str, timezone: str, sun_window: str
) -> list[DailyWindows | SunWindow]:
    """The time windows a recording configuration sets (all of them must agree to record)."""
    found: list[DailyWindows | SunWindow] = []
    if daily := DailyWindows.from_text(daily_windows, timezone):
        found.append(daily)
    if sun := SunWindow.from_text(sun_window):
        found.append(sun)
    return found
