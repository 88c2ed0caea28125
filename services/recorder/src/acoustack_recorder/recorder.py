"""One recording slot, start to finish, and the bookkeeping that keeps a field device honest.

conditions → current deployment → capture → crash-safe WAV in the temporary area → register with
storage → hand to detection. Nothing is lost on a fault: a file storage could not take stays in
the temporary area, and its GUANO block carries everything needed to register it later, so
``reconcile`` (run at start and after outages) registers it, or quarantines what cannot be.

A device that fails is retried with growing pauses, each failure is recorded as a failed
recording, and ``health`` turns unhealthy after a configured number of failures in a row, so
compose or k3s restart the service and the heartbeat reports the last good recording.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import threading
import uuid
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from acoustack import convert, schema
from acoustack.clients import StoreClient
from acoustack.errors import (
    AcoustackError,
    FailedPreconditionError,
    NotFoundError,
    UnavailableError,
)
from acoustack.tasks import generate_recording_task
from acoustack_recorder.conditions import AllOf, RecordingCondition, Site, Verdict
from acoustack_recorder.registration import Registrar, Registration
from acoustack_recorder.sources import AudioSource, DeviceUnavailableError
from acoustack_recorder.wavfile import (
    GuanoFields,
    leftover_partials,
    read_guano,
    recording_file_name,
    write_recording,
)

log = logging.getLogger(__name__)

# Failed slots in a row before health turns NOT_SERVING (compose or k3s then restart the service).
FAILURE_THRESHOLD = 3


class Outcome(StrEnum):
    RECORDED = "recorded"
    RECORDED_UNREGISTERED = "recorded, registration pending"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class SlotResult:
    outcome: Outcome
    reason: str = ""
    recording_id: uuid.UUID | None = None
    path: Path | None = None


@dataclass(frozen=True)
class DeviceInfo:
    # The device's id, or how to learn it (storage owns it: acoustack.identity.LearnedIdentity).
    device_id: str | Callable[[], str]
    make: str = "unknown"
    model: str = "unknown"
    firmware: str = "acoustack"

    def id(self) -> str:
        return self.device_id() if callable(self.device_id) else self.device_id


@dataclass
class Health:
    """What the health service and the heartbeat report about this recorder.

    With ``state_file`` set, each change of health is written there (atomically): the health
    service reads it back with ``Health.read``, and it outlives the pool child that records (one
    killed at its time limit is replaced by a new one). A good slot after good slots writes
    nothing (no disk write per slot).
    """

    failure_threshold: int = FAILURE_THRESHOLD
    consecutive_failures: int = 0
    last_success_at: dt.datetime | None = None
    last_failure_at: dt.datetime | None = None
    last_failure_reason: str = ""
    retry_not_before: dt.datetime | None = None
    state_file: Path | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def healthy(self) -> bool:
        return self.consecutive_failures < self.failure_threshold

    def succeeded(self, at: dt.datetime) -> None:
        with self._lock:
            recovered = self.consecutive_failures > 0 or self.retry_not_before is not None
            self.consecutive_failures = 0
            self.last_success_at = at
            self.retry_not_before = None
            if recovered:  # a good slot after good slots changes nothing the service reports
                self._save()

    def failed(self, at: dt.datetime, reason: str, max_backoff_s: float) -> None:
        with self._lock:
            self.consecutive_failures += 1
            self.last_failure_at = at
            self.last_failure_reason = reason
            pause = min(max_backoff_s, 2.0 ** (self.consecutive_failures - 1))
            self.retry_not_before = at + dt.timedelta(seconds=pause)
            self._save()

    _TIMES = ("last_success_at", "last_failure_at", "retry_not_before")

    def _save(self) -> None:
        if self.state_file is None:
            return
        state = {
            "consecutive_failures": self.consecutive_failures,
            "last_failure_reason": self.last_failure_reason,
            **{
                name: value.isoformat() if (value := getattr(self, name)) else None
                for name in self._TIMES
            },
        }
        temp = self.state_file.with_name(f".{self.state_file.name}.partial")
        try:
            temp.write_text(json.dumps(state))
            os.replace(temp, self.state_file)
        except OSError as exc:  # health reporting must never stop a recording
            log.warning("cannot write the health state to %s: %s", self.state_file, exc)

    @classmethod
    def read(cls, state_file: Path, failure_threshold: int) -> Health:
        """The state saved there (by this process or another), saving to it from now on; a fresh
        (healthy) state when there is none yet."""
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            return cls(failure_threshold=failure_threshold, state_file=state_file)
        times = {
            name: dt.datetime.fromisoformat(state[name]) if state.get(name) else None
            for name in cls._TIMES
        }
        return cls(
            failure_threshold=failure_threshold,
            consecutive_failures=int(state.get("consecutive_failures", 0)),
            last_failure_reason=str(state.get("last_failure_reason", "")),
            state_file=state_file,
            **times,
        )


def temporary_area(preferred: Path, fallback: Path) -> Path:
    """RAM-backed storage spares the SD card; when it is missing or not writable, use the disk."""
    for candidate in (preferred, fallback):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
            probe = candidate / f".probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
            return candidate
        except OSError as exc:
            log.warning("temporary area %s not usable (%s)", candidate, exc.strerror)
    raise UnavailableError(f"neither {preferred} nor {fallback} can hold recordings")


class Ask:
    """The deployment is not given: ask storage for it."""


ASK = Ask()


@dataclass
class Recorder:
    store: StoreClient
    source: AudioSource
    temp_dir: Path
    device: DeviceInfo
    source_id: str = "default"
    duration_s: float = 3.0
    time_expansion: float = 1.0
    conditions: RecordingCondition = field(default_factory=lambda: AllOf([]))
    # Given the stored recording (its id is the task's key; the rest saves the detector a lookup)
    # and the program's configuration of its slot, which the detect task carries on.
    hand_to_detection: Callable[[schema.Recording, dict[str, Any]], None] | None = None
    # The program's configuration the latest slot came with.
    program_config: dict[str, Any] = field(default_factory=dict)
    health: Health = field(default_factory=Health)
    max_backoff_s: float = 300.0
    quarantine_dir: Path | None = None
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    _last_deployment: schema.Deployment | None = field(default=None, init=False, repr=False)
    # With a registrar, registration and hand-over happen in its thread, off the recording path.
    registrar: Registrar | None = None
    # Set when a file could not be registered: the next slot that reaches storage reconciles.
    _registration_pending: bool = field(default=False, init=False, repr=False)

    def record_slot(self, deployment: schema.Deployment | Ask | None = ASK) -> SlotResult:
        """One slot, through the recording template. ``deployment``: the active one as the
        scheduler (which owns the lifecycle) sent it with the task, None for none; by default
        storage is asked."""
        now = self.clock()
        if self.health.retry_not_before and now < self.health.retry_not_before:
            return SlotResult(
                Outcome.SKIPPED,
                f"device retry paused until {self.health.retry_not_before:%H:%M:%S}",
            )
        try:
            device_id = self.device.id()
        except UnavailableError as exc:
            return SlotResult(Outcome.SKIPPED, str(exc))
        slot = _Slot(self, deployment, device_id)
        record = generate_recording_task(
            recorder=slot, store=slot, logger=log, recording_conditions=[slot], clock=self.clock
        )
        try:
            recording = record()
        except AcoustackError as exc:
            if slot.failure is not None:  # the device failed: recorded as a failed recording
                return slot.failure
            if not isinstance(exc, UnavailableError) or slot.written is None:
                raise  # e.g. storage unreachable and no deployment known: nothing was recorded
            # Without a registrar: storage did not take it; the file waits in the temporary area.
            log.warning(
                "storage unreachable; %s kept for later registration (%s)",
                slot.written.name, exc,
            )  # fmt: skip
            self._registration_pending = True
            return SlotResult(
                Outcome.RECORDED_UNREGISTERED, str(exc), slot.recording_id, slot.written
            )
        if recording is None:
            return SlotResult(Outcome.SKIPPED, slot.skip_reason)
        if self.registrar is None and self._registration_pending:
            self._registration_pending = False
            self.reconcile()  # storage is back: register what waited in the temporary area
        return SlotResult(Outcome.RECORDED, "", recording.id, slot.written)

    def _current_deployment(self) -> schema.Deployment | None:
        """The active deployment; while storage is unreachable, the last one it named, so the
        device keeps recording through an outage."""
        try:
            current = self.store.current_deployment()
        except UnavailableError as exc:
            if self._last_deployment is None:
                raise
            log.warning(
                "storage unreachable (%s); recording for %s", exc, self._last_deployment.name
            )
            return self._last_deployment
        self._last_deployment = convert.deployment_from_proto(current) if current else None
        return self._last_deployment

    def capture(
        self, deployment: schema.Deployment, device_id: str, recording_id: uuid.UUID
    ) -> tuple[schema.Recording, Path]:
        """Record ``duration_s`` from the source and write the WAV (crash-safe) with its GUANO
        block into the temporary area. A device that fails raises (AcoustackError)."""
        started_at = self.clock()
        samples = self.source.record(self.duration_s)
        guano = GuanoFields(
            timestamp=started_at,
            capture_samplerate_hz=self.source.samplerate_hz,
            time_expansion=self.time_expansion,
            length_s=len(samples) / self.source.samplerate_hz,
            make=self.device.make,
            model=self.device.model,
            serial=device_id,
            firmware=self.device.firmware,
            deployment=deployment.name,
            deployment_id=deployment.id,
            device_id=device_id,
            source_id=self.source_id,
            recording_id=recording_id,
            latitude=deployment.latitude,
            longitude=deployment.longitude,
        )
        path = write_recording(self.temp_dir, samples, guano)
        self.health.succeeded(started_at)
        return recording_from_guano(path, guano.as_lines(), samples.channels), path

    def register(self, recording: schema.Recording, path: Path) -> None:
        """Tell storage about the recording and hand it to detection: in the registrar's thread
        when there is one (a slot never waits on storage), else now (raising UnavailableError
        while storage cannot take it)."""
        program_config = self.program_config  # the slot's, even if the next one changes it
        if self.registrar is not None:
            self.registrar.submit(
                Registration(
                    path.name,
                    lambda: self.store.store_recording(recording),
                    refused=lambda exc: self._quarantine(path, f"storage refused it: {exc}"),
                    then=(
                        (lambda: self.hand_to_detection(recording, program_config))
                        if self.hand_to_detection is not None
                        else None
                    ),
                )
            )
            return
        self._store_and_hand_over(recording)

    def start(self) -> None:
        """Before the first slot: delete partial files an earlier run left mid-write, then
        register its whole files (in the registrar's thread when there is one, so an outage at
        start delays no slot). Only the files present now are the earlier run's: slots written
        meanwhile register themselves, and a partial file from now on is a write under way."""
        removed = 0
        for partial in leftover_partials(self.temp_dir):
            partial.unlink(missing_ok=True)
            removed += 1
        if removed:
            log.info("deleted %d partial file(s) an earlier run left mid-write", removed)
        leftovers = self._whole_files()

        def settle_earlier_run() -> None:
            self.reconcile(leftovers)
            self.fail_lost_recordings()

        if self.registrar is None:
            settle_earlier_run()
        else:
            self.registrar.submit(Registration("what an earlier run left", settle_earlier_run))

    def _whole_files(self) -> list[Path]:
        return sorted(self.temp_dir.glob("*.wav"))

    def _store_and_hand_over(self, recording: schema.Recording) -> None:
        self.store.store_recording(recording)
        if self.hand_to_detection is not None:
            self.hand_to_detection(recording, self.program_config)

    def _register(self, recording: schema.Recording, path: Path) -> SlotResult:
        try:
            self._store_and_hand_over(recording)
        except UnavailableError as exc:
            log.warning("storage unreachable; %s kept for later registration (%s)", path.name, exc)
            self._registration_pending = True
            return SlotResult(Outcome.RECORDED_UNREGISTERED, str(exc), recording.id, path)
        return SlotResult(Outcome.RECORDED, "", recording.id, path)

    def _failed(
        self,
        deployment: schema.Deployment,
        device_id: str,
        recording_id: uuid.UUID,
        at: dt.datetime,
        exc: AcoustackError,
    ) -> SlotResult:
        reason = str(exc)
        self.health.failed(at, reason, self.max_backoff_s)
        log.error("recording failed (%d in a row): %s", self.health.consecutive_failures, reason)
        failed = schema.Recording(
            id=recording_id,
            deployment_id=deployment.id,
            device_id=device_id,
            source_id=self.source_id,
            path=str(self.temp_dir / recording_file_name(at, self.source_id, recording_id)),
            started_at=at,
            duration_s=0.0,
            capture_samplerate_hz=self.source.samplerate_hz,
            channels=max(1, self.source.channels),
            time_expansion=self.time_expansion,
            status=schema.RecordingStatus.FAILED,
            failure_reason=reason[:2000],
        )
        if self.registrar is not None:
            self.registrar.submit(
                Registration(
                    f"failed recording {recording_id}", lambda: self.store.store_recording(failed)
                )
            )
        else:
            try:
                self.store.store_recording(failed)
            except UnavailableError:
                log.warning("storage unreachable; the failed recording is only in this log")
        kind = "device" if isinstance(exc, DeviceUnavailableError) else "configuration"
        return SlotResult(Outcome.FAILED, f"{kind}: {reason}", recording_id)

    def reconcile(self, paths: list[Path] | None = None) -> dict[str, int]:
        """Bring the temporary area (or just ``paths`` in it) and the store into agreement (at
        start, after outages).

        Whole files the store does not know are registered from their GUANO block and handed to
        detection; files that cannot be registered (no or bad GUANO, unknown deployment) are
        moved to quarantine. Partial files are left alone: one may be a slot being written now
        (``start`` deletes an earlier run's).
        """
        counts = {"registered": 0, "known": 0, "quarantined": 0}
        for path in self._whole_files() if paths is None else paths:
            if not path.exists():  # registered and moved on since the list was made
                continue
            try:
                recording = recording_from_guano(path, read_guano(path))
            except FileNotFoundError:  # moved on (registered, kept or deleted) meanwhile
                continue
            except (
                AcoustackError,
                ValueError,
                KeyError,
                EOFError,
                RuntimeError,
                wave.Error,
            ) as exc:
                self._quarantine(path, f"unreadable metadata: {exc}")
                counts["quarantined"] += 1
                continue
            try:
                self.store.get_recording(recording.id)
                counts["known"] += 1
                continue
            except NotFoundError:
                pass
            try:
                result = self._register(recording, path)
            except NotFoundError as exc:  # its deployment is not in this store
                self._quarantine(path, str(exc))
                counts["quarantined"] += 1
                continue
            if result.outcome is Outcome.RECORDED:
                counts["registered"] += 1
        if any(counts.values()):
            log.info("reconciled the temporary area: %s", counts)
        return counts

    def fail_lost_recordings(self) -> list[str]:
        """Mark failed this source's temporary recordings whose file is gone from the temporary
        area (a RAM-backed area empties in a power cut). Nothing would ever file them: they
        would stay temporary for good and hold a deployment's stop until it timed out."""
        lost: list[str] = []
        entries = self.store.list_recordings(
            statuses=[schema.RecordingStatus.TEMPORARY], limit=10_000
        )
        for entry in entries:
            recording = entry.recording
            path = Path(recording.path)
            if (recording.device_id, recording.source_id) != (
                self.device.id(),
                self.source_id,
            ) or path.parent != self.temp_dir:
                continue  # another source's, or not in our temporary area
            if path.exists():
                continue
            # Filing and deleting update the store before they remove the file, so a file gone
            # while the store still says temporary was lost, not moved on; the store checks the
            # status again as it marks it, in case one of them came in between.
            try:
                self.store.mark_recording_failed(
                    recording.id,
                    f"its file {path.name} vanished from the temporary area before it was filed "
                    "(a RAM-backed temporary area is emptied by a power cut or reboot)",
                    only_if=schema.RecordingStatus.TEMPORARY,
                )
            except (FailedPreconditionError, NotFoundError):
                continue
            lost.append(recording.id)
        if lost:
            log.warning(
                "%d recording(s) lost their file in the temporary area before they were filed; "
                "marked failed: %s",
                len(lost),
                ", ".join(lost[:5]) + (" …" if len(lost) > 5 else ""),
            )
        return lost

    def _quarantine(self, path: Path, why: str) -> None:
        target = self.quarantine_dir or self.temp_dir.parent / "quarantine"
        target.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), target / path.name)
        (target / f"{path.name}.why.txt").write_text(why + "\n")
        log.warning("quarantined %s: %s", path.name, why)


class _Slot:
    """One slot as the recording template sees it: its condition, its store and its recorder.

    The deployment is the one the scheduler sent, or asked of storage once; the conditions need
    its site (sun windows at its coordinates), so it is settled before they are checked. What the
    template does not return (why a slot was skipped, a device failure) is kept here for the
    slot's result."""

    def __init__(
        self, recorder: Recorder, deployment: schema.Deployment | Ask | None, device_id: str
    ) -> None:
        self.recorder = recorder
        self._given = deployment
        self._settled = False
        self._deployment: schema.Deployment | None = None
        self.device_id = device_id
        self.recording_id = uuid.uuid4()
        self.skip_reason = ""
        self.written: Path | None = None
        self.failure: SlotResult | None = None

    def deployment(self) -> schema.Deployment | None:
        if not self._settled:
            if isinstance(self._given, Ask):
                self._deployment = self.recorder._current_deployment()
            else:  # also what a storage outage falls back on, even right after a restart
                self._deployment = self._given
                self.recorder._last_deployment = self._given
            self._settled = True
        return self._deployment

    # RecordingCondition: a verdict, falsy with its reason when the slot is not to be recorded
    def should_record(self, now: dt.datetime) -> Verdict | bool:
        deployment = self.deployment()
        if deployment is None:
            return True  # the template's next step says so: no active deployment
        verdict = self.recorder.conditions.check(now, Site.of(deployment))
        if not verdict:
            self.skip_reason = verdict.reason
        return verdict

    # Store
    def get_current_deployment(self) -> schema.Deployment | None:
        deployment = self.deployment()
        if deployment is None:
            self.skip_reason = "no active deployment (start one first)"
        return deployment

    def store_recording(self, recording: schema.Recording) -> None:
        assert self.written is not None
        self.recorder.register(recording, self.written)

    # AudioRecorder
    def record(self, deployment: schema.Deployment) -> schema.Recording:
        started_at = self.recorder.clock()
        try:
            recording, self.written = self.recorder.capture(
                deployment, self.device_id, self.recording_id
            )
        except AcoustackError as exc:
            self.failure = self.recorder._failed(
                deployment, self.device_id, self.recording_id, started_at, exc
            )
            raise
        return recording


def recording_from_guano(
    path: Path, guano: dict[str, str], channels: int | None = None
) -> schema.Recording:
    """The recording a file describes: GUANO holds its identity, the header its layout."""
    recording_id = uuid.UUID(guano["acoustack|Recording ID"])  # KeyError: not one of ours
    if channels is None:
        with wave.open(str(path), "rb") as wav:
            channels = wav.getnchannels()
    return schema.Recording(
        id=recording_id,
        deployment_id=uuid.UUID(guano["acoustack|Deployment ID"]),
        device_id=guano["acoustack|Device ID"],
        source_id=guano["acoustack|Source ID"],
        path=str(path),
        started_at=dt.datetime.fromisoformat(guano["Timestamp"]),
        duration_s=float(guano["Length"]),
        capture_samplerate_hz=int(guano["Samplerate"]),
        channels=channels,
        time_expansion=float(guano["TE"]),
    )
