"""The scheduler's parts, built from its settings and the program's configuration: the Celery app
and its embedded beat, the configuration store, the deployment lifecycle with its flush, the
detection sweep, status and the task runner, all behind the Control API (``servicer``)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from celery.beat import EmbeddedService

from acoustack import self_check
from acoustack.celery_app import create_app, send
from acoustack.clients import StoreClient
from acoustack.errors import AcoustackError
from acoustack.names import DetectArguments, Queue
from acoustack.program_config import DetectionConfig
from acoustack_scheduler.beat_control import BeatControl
from acoustack_scheduler.broker import (
    EventAnnouncer,
    QueueFlusher,
    purge_queue,
    queue_depths,
    queue_stats,
)
from acoustack_scheduler.config_store import ConfigStore
from acoustack_scheduler.detection_sweep import DetectionSweep
from acoustack_scheduler.lifecycle import CheckResult, Lifecycle
from acoustack_scheduler.programs import Program, Section, expected_workers
from acoustack_scheduler.servicer import ControlServicer
from acoustack_scheduler.settings import SchedulerSettings, parse_services
from acoustack_scheduler.status import StatusReporter
from acoustack_scheduler.task_runner import TaskRunner

log = logging.getLogger("acoustack_scheduler")

# During a stop, a recording left without an output with the detection queue empty this long gets
# its detect again (the background sweep waits the program's detection.resend_after_s).
FLUSH_DETECTION_SWEEP_AFTER_S = 30.0


def read_program_config(settings: SchedulerSettings, program: Program) -> Section:
    """The configuration file, validated by the program's schema (its defaults when missing)."""
    path = settings.config_file
    data = json.loads(path.read_text()) if path.exists() else {}
    return program.parse_config(data)


def service_checks(services: dict[str, str], program_config: Callable[[], dict]):
    """Every service's self-check (its health where it has none), asked in parallel: the test
    recording takes as long as a recording."""

    def run() -> list[CheckResult]:
        config = program_config()
        with ThreadPoolExecutor(max_workers=max(1, len(services))) as pool:
            verdicts = pool.map(
                lambda item: self_check.ask(item[0], item[1], config), sorted(services.items())
            )
            return [result for results in verdicts for result in results]

    return run


def sends_anywhere(config: Section) -> bool:
    """Whether the program has somewhere to send messages (an HTTP URL or an MQTT broker)."""
    messaging = getattr(config, "messaging", None)
    return messaging is not None and bool(messaging.http_url or messaging.mqtt_host)


def detection_section(config: Section) -> DetectionConfig | None:
    return getattr(config, "detection", None)


class Scheduler:
    """Everything the Control API serves, over one configuration store."""

    def __init__(self, settings: SchedulerSettings, program: Program, config: Section) -> None:
        self.settings = settings
        self.program = program
        self.app = create_app(settings.broker_url)
        self.store = StoreClient(settings.storage_target)
        # The in-memory scheduler: aligned slots need no record of past runs across restarts.
        self.beat = EmbeddedService(self.app, thread=True, scheduler_cls="celery.beat:Scheduler")
        self.app.conf.beat_schedule = program.beat_schedule(config)
        self.beat_control = BeatControl(program, config, self._push)
        self.config_changed = threading.Event()  # wakes the detection sweep
        self.config_store = ConfigStore(
            program, settings.config_file, config, on_change=self._on_config
        )
        self.services = {"storage": settings.storage_target, **parse_services(settings.services)}
        self.lifecycle = Lifecycle(
            self.store,
            checks=service_checks(self.services, self.program_config),
            flusher=QueueFlusher(
                self.app,
                self.store,
                # Pending detection is what waits in its queue (or runs): the models' names are
                # the detector's business, so the flush does not list them.
                every_recording_detected=self.detects,
                processed=self.is_processed,
                settle_s=lambda: self.config.recording.duration_s + 2.0,
                send_arguments=lambda task: program.send_arguments(self.config, task),
                can_send=lambda: sends_anywhere(self.config),
                detection_sweep=(
                    (lambda: self.detection_sweep(after_s=FLUSH_DETECTION_SWEEP_AFTER_S))
                    if self.detects
                    else None
                ),
            ),
            announce=EventAnnouncer(self.app),
            pause_recording=self._pause_recording,
            resume_recording=lambda: self.beat_control.resume("record"),
            on_deployment=self.beat_control.set_deployment,
        )
        self.status = StatusReporter(
            program.name,
            self.store,
            self.services,
            lambda: queue_stats(self.app),
            settings.disk_path,
            expected_workers=lambda: expected_workers(program.workers(self.config)),
            program_config=self.program_config,
        )
        self.tasks = TaskRunner(
            self.app, program, lambda: self.beat_control.config, self.beat_control.task_arguments
        )

    @property
    def config(self) -> Section:
        return self.config_store.config

    @property
    def detects(self) -> bool:
        return detection_section(self.config) is not None

    def program_config(self) -> dict[str, Any]:
        return self.config.model_dump(mode="json")

    def servicer(self) -> ControlServicer:
        return ControlServicer(self.lifecycle, self.status, self.tasks, self.config_store)

    def _push(self, schedule: dict, removed: set[str]) -> None:
        self.app.conf.beat_schedule = schedule
        running = self.beat.service.scheduler
        for name in removed:
            running.schedule.pop(name, None)
        running.update_from_dict(schedule)

    def _on_config(self, config: Section) -> None:
        self.beat_control.set_config(config)
        self.config_changed.set()

    def _pause_recording(self) -> None:
        self.beat_control.pause("record")
        # Slots already queued would record under a deployment that is about to end.
        dropped = purge_queue(self.app, Queue.RECORDING)
        if dropped:
            log.info("dropped %d queued record task(s)", dropped)

    def send_detect(self, recording_id: str) -> None:
        send(
            self.app,
            DetectArguments(recording_id=recording_id, program_config=self.program_config()),
        )

    def detection_sweep(self, after_s: float | None = None) -> DetectionSweep:
        """A sweep with the program's detection.resend_* (``after_s`` overrides the wait)."""
        section = detection_section(self.config) or DetectionConfig()
        return DetectionSweep(
            self.store,
            self.send_detect,
            lambda: queue_depths(self.app, [Queue.DETECTION.value])[Queue.DETECTION.value],
            after_s=section.resend_after_s if after_s is None else after_s,
            max_attempts=section.resend_attempts,
            processed=self.is_processed,
        )

    def is_processed(self, model_names: set[str]) -> bool:
        """By the program's detection section as it is now (its required models)."""
        return (detection_section(self.config) or DetectionConfig()).is_processed(model_names)

    def sweep_until(self, stopping: threading.Event) -> None:
        """The detection sweep, while the program detects, until the scheduler stops. Its wait and
        attempts are read from the configuration at every round (a change wakes it); an outage
        skips a round, never the loop."""
        sweep = self.detection_sweep()
        while not stopping.is_set():
            section = detection_section(self.config)
            if section is not None:
                sweep.after_s, sweep.max_attempts = section.resend_after_s, section.resend_attempts
            every_s = min(60.0, (section.resend_after_s if section else 600.0) / 2)
            self.config_changed.wait(every_s)
            self.config_changed.clear()
            if stopping.is_set() or section is None:
                continue
            try:
                sweep.run()
            except Exception as exc:  # storage or the broker away: the next round tries again
                log.warning("detection sweep skipped: %s", exc)

    def learn_deployment(self, stopping: threading.Event, every_s: float = 10.0) -> None:
        """Find the active deployment once storage answers (record tasks go without it until
        then, and the recorder asks storage itself); later changes come through the lifecycle."""
        while not stopping.is_set():
            try:
                found = self.lifecycle.current()
            except AcoustackError as exc:
                log.warning(
                    "storage did not say which deployment is active (%s); asking again", exc
                )
                stopping.wait(every_s)
                continue
            self.beat_control.learned_deployment(found)
            return

    def start_background(self, stopping: threading.Event) -> None:
        threading.Thread(target=self.learn_deployment, args=(stopping,), daemon=True).start()
        threading.Thread(target=self.sweep_until, args=(stopping,), daemon=True).start()
        self.beat.start()

    def stop(self) -> None:
        self.config_changed.set()
        self.beat.stop()
        self.store.close()
