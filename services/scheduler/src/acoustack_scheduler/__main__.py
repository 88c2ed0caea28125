"""Entry point: `python -m acoustack_scheduler`. The Control API (gRPC, with health) and Celery beat
firing the program's tasks on aligned slots (see ``wiring``)."""

from __future__ import annotations

import json
import logging
import sys
import threading

from acoustack import prometheus
from acoustack.celery_app import queue_stats
from acoustack.config import load_service_settings
from acoustack.errors import AcoustackError
from acoustack.grpc_server import start_server, wait_for_termination
from acoustack_scheduler import exported_metrics
from acoustack_scheduler.programs import load_program
from acoustack_scheduler.servicer import register
from acoustack_scheduler.settings import PREFIX, SchedulerSettings
from acoustack_scheduler.wiring import Scheduler, read_program_config

log = logging.getLogger("acoustack_scheduler")


def main() -> int:
    settings = load_service_settings(SchedulerSettings, PREFIX, "acoustack-scheduler")
    try:
        program = load_program(settings.program)
        config = read_program_config(settings, program)
    except (AcoustackError, json.JSONDecodeError) as exc:
        print(f"acoustack-scheduler: {settings.config_file}: {exc}", file=sys.stderr)
        return 2
    scheduler = Scheduler(settings, program, config)
    prometheus.prepare_metrics_dir(settings.metrics_dir)
    prometheus.start_exporter(
        settings.metrics_port,
        settings.metrics_host,
        metrics_dir=settings.metrics_dir,
        collectors=[exported_metrics.collector(lambda: queue_stats(scheduler.app))],
    )
    server = start_server(
        [register(scheduler.servicer())], address=f"{settings.grpc_host}:{settings.grpc_port}"
    )
    stopping = threading.Event()
    scheduler.start_background(stopping)
    log.info(
        "program %s: %s; Control API on port %d",
        program.name,
        ", ".join(scheduler.app.conf.beat_schedule),
        server.port,
    )
    try:
        wait_for_termination(server)
    finally:
        stopping.set()
        scheduler.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
