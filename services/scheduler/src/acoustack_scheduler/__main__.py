"""Entry point: `python -m acoustack_scheduler`. The Control API (gRPC, with health) and Celery beat
firing the program's tasks on aligned slots."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from celery.beat import EmbeddedService

from acoustack import self_check
from acoustack.celery_app import create_app
from acoustack.clients import StoreClient
from acoustack.config import load_service_settings
from acoustack.errors import AcoustackError
from acoustack.grpc_server import start_server, wait_for_termination
from acoustack.names import Queue, Task
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
from acoustack_scheduler.programs import expected_workers, load_program
from acoustack_scheduler.servicer import ControlServicer, register
from acoustack_scheduler.settings import PREFIX, SchedulerSettings, parse_services
from acoustack_scheduler.status import StatusReporter
from acoustack_scheduler.task_runner import TaskRunner

log = logging.getLogger("acoustack_scheduler")


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


def sends_anywhere(config) -> bool:
    """Whether the program has somewhere to send messages (an HTTP URL or an MQTT broker)."""
    messaging = getattr(config, "messaging", None)
    return messaging is not None and bool(messaging.http_url or messaging.mqtt_host)


def learn_deployment(
    lifecycle: Lifecycle,
    beat_control: BeatControl,
    stopping: threading.Event,
    every_s: float = 10.0,
) -> None:
    """Find the active deployment once storage answers (record tasks go without it until then,
    and the recorder asks storage itself); later changes come through the lifecycle."""
    while not stopping.is_set():
        try:
            found = lifecycle.current()
        except AcoustackError as exc:
            log.warning("storage did not say which deployment is active (%s); asking again", exc)
            stopping.wait(every_s)
            continue
        beat_control.learned_deployment(found)
        return


# During a stop, a recording left without an output with the detection queue empty this long gets
# its detect again (the background sweep waits SCHEDULER_DETECTION_SWEEP_AFTER_S).
FLUSH_DETECTION_SWEEP_AFTER_S = 30.0


def sweep_now_and_then(sweep: DetectionSweep, stopping: threading.Event, every_s: float) -> None:
    """The detection sweep, until the scheduler stops; an outage skips a round, never the loop."""
    while not stopping.wait(every_s):
        try:
            sweep.run()
        except Exception as exc:  # storage or the broker away: the next round tries again
            log.warning("detection sweep skipped: %s", exc)


def main() -> int:
    settings = load_service_settings(SchedulerSettings, PREFIX, "acoustack-scheduler")
    try:
        program = load_program(settings.program)
        data = json.loads(settings.config_file.read_text()) if settings.config_file.exists() else {}
        config = program.parse_config(data)
    except (AcoustackError, json.JSONDecodeError) as exc:
        print(f"acoustack-scheduler: {settings.config_file}: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings.broker_url)
    store = StoreClient(settings.storage_target)
    # The in-memory scheduler: aligned slots need no record of past runs across restarts.
    beat = EmbeddedService(app, thread=True, scheduler_cls="celery.beat:Scheduler")

    def push(schedule: dict, removed: set[str]) -> None:
        app.conf.beat_schedule = schedule
        running = beat.service.scheduler
        for name in removed:
            running.schedule.pop(name, None)
        running.update_from_dict(schedule)

    app.conf.beat_schedule = program.beat_schedule(config)
    beat_control = BeatControl(program, config, push)
    services = {"storage": settings.storage_target, **parse_services(settings.services)}

    def detection_sweep(after_s: float) -> DetectionSweep:
        return DetectionSweep(
            store,
            lambda recording_id: app.send_task(Task.DETECT.value, args=[recording_id]),
            lambda: queue_depths(app, [Queue.DETECTION.value])[Queue.DETECTION.value],
            after_s=after_s,
            max_attempts=settings.detection_sweep_attempts,
        )

    def pause_recording() -> None:
        beat_control.pause("record")
        # Slots already queued would record under a deployment that is about to end.
        dropped = purge_queue(app, Queue.RECORDING)
        if dropped:
            log.info("dropped %d queued record task(s)", dropped)

    lifecycle = Lifecycle(
        store,
        checks=service_checks(services, lambda: config_store.get("")),
        # Pending detection is what waits in its queue (or runs): the models' names are the
        # detector's business, so the flush does not list them.
        flusher=QueueFlusher(
            app,
            store,
            every_recording_detected=hasattr(config, "detection"),
            settle_s=lambda: config_store.config.recording.duration_s + 2.0,
            send_arguments=lambda task: program.send_arguments(config_store.config, task),
            can_send=lambda: sends_anywhere(config_store.config),
            detection_sweep=(
                (lambda: detection_sweep(after_s=FLUSH_DETECTION_SWEEP_AFTER_S))
                if hasattr(config, "detection")
                else None
            ),
        ),
        announce=EventAnnouncer(app),
        pause_recording=pause_recording,
        resume_recording=lambda: beat_control.resume("record"),
        on_deployment=beat_control.set_deployment,
    )
    status = StatusReporter(
        program.name,
        store,
        services,
        lambda: queue_stats(app),
        settings.disk_path,
        expected_workers=lambda: expected_workers(program.workers(config_store.config)),
        program_config=lambda: config_store.config.model_dump(mode="json"),
    )
    tasks = TaskRunner(app, program, lambda: beat_control.config, beat_control.task_arguments)
    config_store = ConfigStore(
        program, settings.config_file, config, on_change=beat_control.set_config
    )
    server = start_server(
        [register(ControlServicer(lifecycle, status, tasks, config_store))],
        address=f"{settings.grpc_host}:{settings.grpc_port}",
    )
    stopping = threading.Event()
    threading.Thread(
        target=learn_deployment, args=(lifecycle, beat_control, stopping), daemon=True
    ).start()
    if hasattr(config, "detection"):
        sweep = detection_sweep(after_s=settings.detection_sweep_after_s)
        every_s = min(60.0, settings.detection_sweep_after_s / 2)
        threading.Thread(
            target=sweep_now_and_then, args=(sweep, stopping, every_s), daemon=True
        ).start()
    beat.start()
    log.info(
        "program %s: %s; Control API on port %d",
        program.name,
        ", ".join(app.conf.beat_schedule),
        server.port,
    )
    try:
        wait_for_termination(server)
    finally:
        stopping.set()
        beat.stop()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
