"""The heartbeat's judgement: silence only counts while recording was due, failures and stuck queues
are named, and the status fits a heartbeat."""

from __future__ import annotations

import datetime as dt

from astral import Observer, sun

from acoustack import device_health, schema
from acoustack.device_health import DeviceFacts, QueueState, problems, status
from acoustack.program_config import RecordingConfig

LONG_AGO = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NIGHTS = RecordingConfig(interval_s=10, daily_windows="20:00-06:00", timezone="Europe/London")


def deployment(**overrides) -> schema.Deployment:
    values = dict(name="meadow", latitude=52.2, longitude=0.12, started_at=LONG_AGO)
    values.update(overrides)
    return schema.Deployment(**values)


def facts(now: dt.datetime, last: dt.datetime | None, **overrides) -> DeviceFacts:
    values = dict(now=now, deployment=deployment(), last_recording_at=last)
    values.update(overrides)
    return DeviceFacts(**values)


def london(text: str) -> dt.datetime:
    # June: London is UTC+1.
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC) - dt.timedelta(hours=1)


def test_silence_while_recording_is_due_is_a_problem():
    now = london("2026-06-01T23:00")
    found = problems(facts(now, now - dt.timedelta(hours=2)), NIGHTS)
    assert found == [
        "no recording for 2.0 h (one is due every 10 s): see the recorder's log (microphone, free disk)"
    ]
    assert status(found).startswith("degraded: no recording for 2.0 h")


def test_silence_outside_the_windows_or_just_after_one_opens_is_normal():
    last_night_end = london("2026-06-01T06:00")
    assert problems(facts(london("2026-06-01T12:00"), last_night_end), NIGHTS) == []
    # The window opened 3 minutes ago; the first slots may not have landed yet.
    assert problems(facts(london("2026-06-01T20:03"), last_night_end), NIGHTS) == []
    assert status([]) == "ok"


def test_no_deployment_or_an_ended_one_is_meant_to_be_silent():
    now = london("2026-06-01T23:00")
    assert problems(facts(now, None, deployment=None), NIGHTS) == []
    ended = deployment(ended_at=now - dt.timedelta(days=1))
    assert problems(facts(now, None, deployment=ended), NIGHTS) == []


def test_a_new_deployment_gets_its_first_slots_before_it_is_called_silent():
    now = london("2026-06-01T23:00")
    just_started = deployment(started_at=now - dt.timedelta(minutes=2))
    assert problems(facts(now, None, deployment=just_started), NIGHTS) == []
    started_an_hour_ago = deployment(started_at=now - dt.timedelta(hours=1))
    [found] = problems(facts(now, None, deployment=started_an_hour_ago), NIGHTS)
    assert found.startswith("no recording yet for 60 min")


def test_a_sun_window_is_judged_at_the_deployment():
    config = RecordingConfig(interval_s=10, sun_window="dusk-30m+3h")
    site = Observer(52.2, 0.12)
    dusk = sun.dusk(site, date=dt.date(2026, 6, 1), tzinfo=dt.UTC)
    silent_since = dusk - dt.timedelta(days=1)
    assert problems(facts(dusk + dt.timedelta(hours=1), silent_since), config)
    assert problems(facts(dusk - dt.timedelta(hours=6), silent_since), config) == []


def test_failures_and_stuck_queues_are_named():
    now = london("2026-06-01T12:00")
    found = problems(
        facts(
            now,
            now - dt.timedelta(seconds=5),
            failed_last_hour=4,
            last_failure_reason="device: Invalid input device (-9996)\ntraceback …",
            queues={
                "recording": QueueState(waiting=3, consumers=0),
                "detection": QueueState(waiting=150, consumers=2),
                "files": QueueState(waiting=1, consumers=1),
            },
        ),
        NIGHTS,
    )
    assert found == [
        "4 recording(s) failed in the last hour (last: device: Invalid input device (-9996))",
        "queue detection is behind: 150 task(s) waiting",
        "3 task(s) wait on queue recording and no worker takes them",
    ]


def test_a_long_status_is_cut_to_what_a_heartbeat_carries():
    text = status(["x" * 150, "y" * 150])
    assert len(text) == device_health.STATUS_MAX
    assert text.endswith("…")
    schema.Heartbeat(device_id="d", status=text)  # accepted


def test_a_card_retention_cannot_keep_from_filling_is_named_and_deleting_is_not_a_problem():
    now = london("2026-06-01T23:00")
    working = device_health.RetentionFacts(
        destination="/recordings",
        keep_free_mb=1024,
        keep_best_per_species=5,
        free_mb=1100.0,
        short_of_free_mb=0.0,
        deleted_for_age=0,
        deleted_for_space=40,
    )
    # Deleting the least valuable to hold the floor is retention doing its job.
    assert problems(facts(now, now, retention=working), NIGHTS) == []
    stuck = device_health.RetentionFacts(
        destination="/recordings",
        keep_free_mb=1024,
        keep_best_per_species=5,
        free_mb=600.0,
        short_of_free_mb=424.0,
        deleted_for_age=0,
        deleted_for_space=3,
    )
    assert problems(facts(now, now, retention=stuck), NIGHTS) == [
        "disk filling: retention cannot keep 1024 MB free on /recordings (600 MB free), only the "
        "best 5 recordings of each species are left; lower keep_best_per_species or free the disk"
    ]
