"""Is the device doing its job? The heartbeat's status answers: "ok", or "degraded: …" naming each
problem, so whoever watches a fleet sees a silent microphone, failing recordings or work piling up
without reading metrics.

Domain logic only: the facts are gathered by the caller (the messenger, at each heartbeat).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from acoustack import schema
from acoustack.names import Queue
from acoustack.program_config import RecordingConfig
from acoustack.time_windows import Site, recording_windows

# Silence shorter than this is never a problem: a restart, a slow slot, a storage hiccup.
MIN_SILENCE_S = 300.0
# A recording is due every interval; this many intervals without one is silence.
MISSED_SLOTS = 3
# Waiting tasks beyond which a queue is behind (record tasks are never meant to wait).
BACKLOG = {Queue.RECORDING.value: 5, Queue.DETECTION.value: 100, Queue.FILES.value: 5}
STATUS_MAX = 200  # schema.Heartbeat.status


@dataclass(frozen=True)
class QueueState:
    waiting: int
    consumers: int


@dataclass(frozen=True)
class RetentionFacts:
    """What retention did over the last day, and where its last run left the disk."""

    destination: str
    keep_free_mb: int
    keep_best_per_species: int
    free_mb: float | None  # None: not measured (no floor set)
    short_of_free_mb: float
    deleted_for_age: int
    deleted_for_space: int


@dataclass(frozen=True)
class DeviceFacts:
    now: dt.datetime
    deployment: schema.Deployment | None
    last_recording_at: dt.datetime | None
    failed_last_hour: int = 0
    last_failure_reason: str = ""
    queues: dict[str, QueueState] = field(default_factory=dict)
    retention: RetentionFacts | None = None  # None: retention has not run yet


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _recording_due(recording: RecordingConfig, site: Site | None, at: dt.datetime) -> bool:
    """Whether the program's recording conditions would record at ``at`` (free disk aside)."""
    windows = recording_windows(recording.daily_windows, recording.timezone, recording.sun_window)
    return all(window.check(at, site) for window in windows)


def silence_problem(facts: DeviceFacts, recording: RecordingConfig | None) -> str | None:
    deployment = facts.deployment
    if deployment is None or deployment.ended_at is not None:
        return None  # nothing is meant to record
    recording = recording or RecordingConfig()
    since = deployment.started_at
    if facts.last_recording_at is not None and facts.last_recording_at > since:
        since = facts.last_recording_at
    allowed = max(MIN_SILENCE_S, MISSED_SLOTS * recording.interval_s)
    silence = (facts.now - since).total_seconds()
    if silence <= allowed:
        return None
    site = Site.of(deployment)
    # Only when recording was due all along the allowed gap: at a window's edge silence is normal.
    start_of_gap = facts.now - dt.timedelta(seconds=allowed)
    if not (
        _recording_due(recording, site, facts.now) and _recording_due(recording, site, start_of_gap)
    ):
        return None
    what = "no recording yet" if facts.last_recording_at is None else "no recording"
    return (
        f"{what} for {_duration(silence)} (one is due every {recording.interval_s:g} s): "
        "see the recorder's log (microphone, free disk)"
    )


def queue_problems(queues: dict[str, QueueState]) -> list[str]:
    found = []
    for name, state in sorted(queues.items()):
        if state.waiting and not state.consumers:
            found.append(f"{state.waiting} task(s) wait on queue {name} and no worker takes them")
        elif state.waiting > BACKLOG.get(name, 100):
            found.append(f"queue {name} is behind: {state.waiting} task(s) waiting")
    return found


def disk_problem(retention: RetentionFacts | None) -> str | None:
    """A card retention cannot keep from filling: recording stops soon after."""
    if retention is None or retention.short_of_free_mb <= 0:
        return None
    free = "" if retention.free_mb is None else f" ({retention.free_mb:.0f} MB free)"
    return (
        f"disk filling: retention cannot keep {retention.keep_free_mb} MB free on "
        f"{retention.destination}{free}, only the best {retention.keep_best_per_species} "
        "recordings of each species are left; lower keep_best_per_species or free the disk"
    )


def problems(facts: DeviceFacts, recording: RecordingConfig | None) -> list[str]:
    found = []
    silence = silence_problem(facts, recording)
    if silence:
        found.append(silence)
    if facts.failed_last_hour:
        reason = (
            facts.last_failure_reason.strip().splitlines()[0][:80]
            if facts.last_failure_reason
            else ""
        )
        found.append(
            f"{facts.failed_last_hour} recording(s) failed in the last hour"
            + (f" (last: {reason})" if reason else "")
        )
    found.extend(queue_problems(facts.queues))
    disk = disk_problem(facts.retention)
    if disk:
        found.append(disk)
    return found


def status(found: list[str]) -> str:
    """ "ok", or "degraded: " and the problems, cut to what a heartbeat carries."""
    if not found:
        return "ok"
    text = "degraded: " + "; ".join(found)
    return text if len(text) <= STATUS_MAX else text[: STATUS_MAX - 1] + "…"
