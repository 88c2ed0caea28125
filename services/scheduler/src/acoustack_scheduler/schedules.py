"""Celery schedules that fire on wall-clock boundaries.

``aligned_schedule(10)`` fires at :00, :10, :20 … of every minute; with ``offset_seconds=5`` at :05,
:15, …. Unlike Celery's plain interval schedule, which counts from whenever beat started, recordings
of several devices (and of one device across restarts) then line up in time, and a restart does not
shift the slots.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from celery import schedules

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class aligned_schedule(schedules.schedule):
    def __init__(
        self,
        run_every: float | dt.timedelta,
        offset_seconds: float = 0,
        nowfun: Callable[[], dt.datetime] | None = None,
        app: Any = None,
    ) -> None:
        interval = (
            run_every if isinstance(run_every, dt.timedelta) else dt.timedelta(seconds=run_every)
        )
        if interval <= dt.timedelta(0):
            raise ValueError(
                f"run_every: must be a positive interval, got {interval.total_seconds():g} s"
            )
        offset = dt.timedelta(seconds=offset_seconds)
        if not dt.timedelta(0) <= offset < interval:
            raise ValueError(
                f"offset_seconds: must be at least 0 and less than run_every "
                f"({interval.total_seconds():g} s), got {offset_seconds:g}"
            )
        super().__init__(run_every=interval, nowfun=nowfun, app=app)
        self.offset = offset

    @staticmethod
    def _aware(moment: dt.datetime) -> dt.datetime:
        # Celery's clock is UTC when enable_utc is set; a naive time from it is UTC.
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)

    def _aware_now(self) -> dt.datetime:
        return self._aware(self.now())

    def last_boundary(self, moment: dt.datetime) -> dt.datetime:
        """The latest slot at or before ``moment``."""
        elapsed = moment.astimezone(dt.UTC) - EPOCH - self.offset
        slots = elapsed // self.run_every
        return EPOCH + self.offset + slots * self.run_every

    def next_boundary(self, moment: dt.datetime) -> dt.datetime:
        """The first slot strictly after ``moment``."""
        return self.last_boundary(moment) + self.run_every

    def is_due(self, last_run_at: dt.datetime) -> schedules.schedstate:
        now = self._aware_now()
        last_run_at = self._aware(last_run_at)
        next_check = (self.next_boundary(now) - now).total_seconds()
        # Due when a slot has begun since the last run; a slot missed while beat was down is not
        # replayed (a recording an hour late is not the recording that was scheduled).
        if self.last_boundary(now) > last_run_at:
            return schedules.schedstate(is_due=True, next=next_check)
        return schedules.schedstate(is_due=False, next=next_check)

    def remaining_estimate(self, last_run_at: dt.datetime) -> dt.timedelta:
        now = self._aware_now()
        return (
            self.next_boundary(
                max(now, last_run_at if last_run_at.tzinfo else last_run_at.replace(tzinfo=dt.UTC))
            )
            - now
        )

    def __repr__(self) -> str:
        every, offset = self.run_every.total_seconds(), self.offset.total_seconds()
        return f"<aligned_schedule: every {every:g} s + {offset:g} s>"

    def __reduce__(self):
        return self.__class__, (self.run_every, self.offset.total_seconds(), self.nowfun)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, aligned_schedule):
            return self.run_every == other.run_every and self.offset == other.offset
        return NotImplemented

    __hash__ = None  # mutable like Celery's schedules
