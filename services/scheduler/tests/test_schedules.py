"""aligned_schedule with a fake clock: slots on wall-clock boundaries, offsets, restarts."""

from __future__ import annotations

import datetime as dt

import pytest
from celery import Celery

from acoustack_scheduler.schedules import aligned_schedule


class FakeClock:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def at(h, m, s, micro=0) -> dt.datetime:
    return dt.datetime(2026, 6, 1, h, m, s, micro, tzinfo=dt.UTC)


def fire_times(schedule: aligned_schedule, clock: FakeClock, seconds: float, step: float = 0.25):
    """Drive the schedule as beat would: check often, record when it says due."""
    last_run = clock()
    fired = []
    for _ in range(int(seconds / step)):
        clock.advance(step)
        due, _next = schedule.is_due(last_run)
        if due:
            fired.append(clock())
            last_run = clock()
    return fired


def test_every_10_s_fires_at_00_10_20():
    clock = FakeClock(at(21, 0, 3, 400_000))  # beat started at :03.4
    fired = fire_times(aligned_schedule(10, nowfun=clock), clock, 35)
    assert [t.second for t in fired] == [10, 20, 30]
    # Beat fires on its first check after a boundary: within one check interval of it.
    assert all(t.microsecond < 250_000 for t in fired)


def test_an_offset_shifts_the_slots():
    clock = FakeClock(at(21, 0, 0))
    fired = fire_times(aligned_schedule(10, offset_seconds=5, nowfun=clock), clock, 30)
    assert [t.second for t in fired] == [5, 15, 25]


def test_minutes_and_hours_align_to_the_clock():
    clock = FakeClock(at(21, 0, 59))
    schedule = aligned_schedule(dt.timedelta(minutes=2), nowfun=clock)
    due, next_s = schedule.is_due(clock())
    assert not due and next_s == pytest.approx(61)  # next slot 21:02:00
    hourly = aligned_schedule(3600, nowfun=FakeClock(at(21, 30, 0)))
    assert hourly.next_boundary(at(21, 30, 0)) == at(22, 0, 0)


def test_a_restart_does_not_shift_the_slots_or_replay_missed_ones():
    clock = FakeClock(at(21, 0, 7))
    schedule = aligned_schedule(10, nowfun=clock)
    # beat was down from :07 to :41; its entry remembers a run at :00.
    clock.advance(34)
    due, next_s = schedule.is_due(at(21, 0, 0))
    assert due  # one run for the slot at :40, not four for the slots missed
    assert next_s == pytest.approx(9)  # then the slot at :50
    assert not schedule.is_due(clock())[0]


def test_the_next_check_is_the_time_to_the_next_slot():
    clock = FakeClock(at(21, 0, 12, 500_000))
    due, next_s = aligned_schedule(10, nowfun=clock).is_due(at(21, 0, 10))
    assert not due and next_s == pytest.approx(7.5)


@pytest.mark.parametrize(
    ("every", "offset", "message"),
    [
        (10, 10, "offset_seconds: must be at least 0 and less than run_every \\(10 s\\), got 10"),
        (10, -1, "offset_seconds: must be at least 0"),
        (0, 0, "run_every: must be a positive interval"),
    ],
)
def test_bad_offsets_and_intervals_are_refused_clearly(every, offset, message):
    with pytest.raises(ValueError, match=message):
        aligned_schedule(every, offset_seconds=offset)


def test_it_works_as_a_beat_entry_of_a_real_app():
    app = Celery(set_as_current=False)
    app.conf.beat_schedule = {
        "record": {"task": "acoustack.record", "schedule": aligned_schedule(10, 5)}
    }
    entry = app.conf.beat_schedule["record"]["schedule"]
    assert entry == aligned_schedule(10, 5)
    assert repr(entry) == "<aligned_schedule: every 10 s + 5 s>"
    restored = entry.__reduce__()[0](*entry.__reduce__()[1])
    assert restored == entry
