"""Entry point: `python -m acoustack_scheduler`. The Control API (gRPC, with health) and Celery beat
firing the program's tasks on aligned slots."""

from __future__ import annotations

import json
import logging
import sys

from celery.beat import EmbeddedService

from acoustack.celery_app import create_app
from acoustack.clients import StoreClient
from acoustack.config import load_service_settings
from acoustack.errors import AcoustackError
from acoustack.grpc_server import start_server, wait_for_termination
from acoustack.healthcheck import check
from acoustack_scheduler.broker import EventAnnouncer, QueueFlusher, queue_depths
from acoustack_scheduler.config import PREFIX, SchedulerSettings, parse_services
from acoustack_scheduler.config_store import ConfigStore
from acoustack_scheduler.control_server import ControlServicer, register
from acoustack_scheduler.lifecycle import CheckResult, Lifecycle
from acoustack_scheduler.programs import load_program
from acoustack_scheduler.status import StatusReporter
from acoustack_scheduler.task_runner import TaskRunner

log = logging.getLogger("acoustack_scheduler")


def health_checks(services: dict[str, str]):
    def run() -> list[CheckResult]:
        results = []
        for name, target in sorted(services.items()):
            ok, text = check(target, timeout_s=3.0)
            results.append(CheckResult(name, ok, text))
        return results

    return run


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
    app.conf.beat_schedule = program.beat_schedule(config)
    store = StoreClient(settings.storage_target)
    services = {"storage": settings.storage_target, **parse_services(settings.services)}
    lifecycle = Lifecycle(
        store,
        checks=health_checks(services),
        # Pending detection is what waits in its queue (or runs): the models' names are the
        # detector's business, so the flush does not list them.
        flusher=QueueFlusher(
            app,
            store,
            every_recording_detected=hasattr(config, "detection"),
            settle_s=config.recording.duration_s + 2.0,
        ),
        announce=EventAnnouncer(app),
        pause_recording=lambda: pause_entry("record"),
        resume_recording=lambda: resume_entry("record"),
    )
    paused: dict[str, dict] = {}

    def pause_entry(name: str) -> None:
        entry = app.conf.beat_schedule.get(name)
        if entry is not None:
            paused[name] = entry
            app.conf.beat_schedule = {k: v for k, v in app.conf.beat_schedule.items() if k != name}
            beat.service.scheduler.schedule.pop(name, None)
            log.info("%s paused", name)

    def resume_entry(name: str) -> None:
        entry = paused.pop(name, None)
        if entry is not None:
            app.conf.beat_schedule = {**app.conf.beat_schedule, name: entry}
            beat.service.scheduler.update_from_dict({name: entry})
            log.info("%s resumed", name)

    status = StatusReporter(
        program.name, store, services, lambda: queue_depths(app), settings.disk_path
    )
    tasks = TaskRunner(app, program, config)
    # The in-memory scheduler: aligned slots need no record of past runs across restarts.
    beat = EmbeddedService(app, thread=True, scheduler_cls="celery.beat:Scheduler")

    def apply(new_config) -> None:
        # A changed interval or offset takes effect at once; queued tasks are left as they are.
        schedule = program.beat_schedule(new_config)
        app.conf.beat_schedule = schedule
        beat.service.scheduler.update_from_dict(schedule)
        tasks.config = new_config
        log.info("configuration changed; schedule: %s", ", ".join(schedule))

    config_store = ConfigStore(program, settings.config_file, config, on_change=apply)
    server = start_server(
        [register(ControlServicer(lifecycle, status, tasks, config_store))],
        address=f"{settings.grpc_host}:{settings.grpc_port}",
    )
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
        beat.stop()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
