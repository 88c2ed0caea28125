"""Recording conditions at real places and seasons, including polar day and night."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from acoustack.errors import InvalidArgumentError
from acoustack_recorder.conditions import (
    AllOf,
    DailyWindow,
    DailyWindows,
    FreeDiskSpace,
    Site,
    SunWindow,
)

LONDON = Site(51.5074, -0.1278)
SYDNEY = Site(-33.8688, 151.2093)
VANCOUVER = Site(49.2827, -123.1207)
TROMSO = Site(69.6492, 18.9553)
QUITO = Site(-0.1807, -78.4678)
GREENWICH = Site(51.4769, 0.0)
UTC = dt.UTC


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def minutes(a: dt.datetime, b: dt.datetime) -> float:
    return abs((a - b).total_seconds()) / 60


# Published times (local clock, rounded to the minute) the computed events must match within 2 min.
@pytest.mark.parametrize(
    ("site", "event", "day", "expected_utc"),
    [
        (LONDON, "sunrise", dt.date(2026, 6, 21), at(2026, 6, 21, 3, 43)),  # 04:43 BST
        (LONDON, "sunset", dt.date(2026, 6, 21), at(2026, 6, 21, 20, 21)),  # 21:21 BST
        (LONDON, "sunrise", dt.date(2026, 12, 21), at(2026, 12, 21, 8, 4)),  # 08:04 GMT
        (SYDNEY, "sunset", dt.date(2026, 6, 21), at(2026, 6, 21, 6, 54)),  # 16:54 AEST
        (QUITO, "sunrise", dt.date(2026, 3, 20), at(2026, 3, 20, 11, 18)),  # 06:18 ECT
    ],
)
def test_sun_events_match_published_tables(site, event, day, expected_utc):
    computed = SunWindow(event, after=dt.timedelta(minutes=1)).event_time(day, site)
    assert minutes(computed, expected_utc) <= 2


def test_dusk_is_computed_at_the_deployment_not_at_greenwich():
    window = SunWindow("dusk", before=dt.timedelta(minutes=30), after=dt.timedelta(hours=2))
    vancouver_dusk = window.event_time(dt.date(2026, 6, 22), VANCOUVER)  # ~04:5x UTC, 21:5x PDT
    greenwich_dusk = window.event_time(dt.date(2026, 6, 21), GREENWICH)  # ~21:1x UTC
    assert window.check(vancouver_dusk + dt.timedelta(hours=1), VANCOUVER)
    verdict = window.check(greenwich_dusk + dt.timedelta(hours=1), VANCOUVER)
    assert not verdict
    assert "outside the dusk window" in verdict.reason


def test_a_dusk_window_reaching_past_midnight_utc_is_followed():
    # Sydney dusk is ~07:20 UTC; a window of 18 h after it runs past midnight UTC.
    window = SunWindow("dusk", after=dt.timedelta(hours=18))
    assert window.check(at(2026, 6, 22, 0, 30), SYDNEY)


def test_polar_day_and_night():
    dusk = SunWindow("dusk", after=dt.timedelta(hours=2))
    midsummer = dusk.check(at(2026, 6, 21, 23, 0), TROMSO)
    assert midsummer.record
    assert "there is no dusk at 69.65, 18.96" in midsummer.reason
    assert "recording anyway" in midsummer.reason
    strict = SunWindow("sunset", after=dt.timedelta(hours=2), when_undefined="skip")
    midwinter = strict.check(at(2026, 12, 21, 12, 0), TROMSO)  # polar night: no sunset
    assert not midwinter.record
    assert "not recording" in midwinter.reason
    # Civil dusk still happens in the polar night at Tromsø: the window works as usual.
    polar_dusk = dusk.event_time(dt.date(2026, 12, 21), TROMSO)
    assert dusk.check(polar_dusk + dt.timedelta(minutes=30), TROMSO)


def test_a_deployment_without_coordinates_is_named_in_the_verdict():
    verdict = SunWindow("dawn", before=dt.timedelta(hours=1)).check(at(2026, 6, 1, 4), None)
    assert verdict.record
    assert "the deployment has no coordinates" in verdict.reason


def test_daily_windows_wrap_midnight_in_the_configured_zone():
    night = DailyWindows([DailyWindow(dt.time(20), dt.time(6))], "Europe/London")
    assert night.check(at(2026, 6, 1, 21, 30))  # 22:30 BST
    assert night.check(at(2026, 6, 1, 4, 0))  # 05:00 BST
    day = night.check(at(2026, 6, 1, 12, 0))
    assert not day
    assert day.reason == "13:00 is outside 20:00–06:00 Europe/London"
    # In winter London is on GMT: 19:30 UTC is 19:30 local, still outside.
    assert not night.check(at(2026, 1, 15, 19, 30))
    assert night.check(at(2026, 1, 15, 20, 0))


def test_several_windows_and_a_whole_day():
    windows = DailyWindows(
        [DailyWindow(dt.time(5), dt.time(7)), DailyWindow(dt.time(19), dt.time(23))], "UTC"
    )
    assert windows.check(at(2026, 6, 1, 6))
    assert windows.check(at(2026, 6, 1, 20))
    assert not windows.check(at(2026, 6, 1, 12))
    assert DailyWindows([DailyWindow(dt.time(0), dt.time(0))], "UTC").check(at(2026, 6, 1, 12))


def test_bad_configuration_is_refused_by_name():
    with pytest.raises(
        InvalidArgumentError, match="timezone: 'Mars/Olympus' is not a known time zone"
    ):
        DailyWindows([DailyWindow(dt.time(20), dt.time(6))], "Mars/Olympus")
    with pytest.raises(InvalidArgumentError, match="event: 'noon' is not one of"):
        SunWindow("noon", after=dt.timedelta(hours=1))
    with pytest.raises(InvalidArgumentError, match="the window is empty"):
        SunWindow("dusk")
    with pytest.raises(InvalidArgumentError, match="naive time is ambiguous"):
        DailyWindows([DailyWindow(dt.time(1), dt.time(2))], "UTC").check(dt.datetime(2026, 1, 1))


def test_free_disk(tmp_path: Path):
    assert FreeDiskSpace(tmp_path, 1).check(at(2026, 1, 1))
    full = FreeDiskSpace(tmp_path, 10**18).check(at(2026, 1, 1))
    assert not full
    assert "free disk" in full.reason and "< 1000000000.00 GB" in full.reason
    missing = FreeDiskSpace(tmp_path / "gone", 1).check(at(2026, 1, 1))
    assert not missing and "cannot read free space" in missing.reason


def test_all_conditions_must_pass_and_the_first_refusal_is_the_reason(tmp_path):
    conditions = AllOf(
        [
            DailyWindows([DailyWindow(dt.time(20), dt.time(6))], "UTC"),
            FreeDiskSpace(tmp_path, 10**18),
        ]
    )
    verdict = conditions.check(at(2026, 6, 1, 22), LONDON)
    assert not verdict and verdict.reason.startswith("free disk")
    assert not conditions.check(at(2026, 6, 1, 12), LONDON).reason.startswith("free disk")
