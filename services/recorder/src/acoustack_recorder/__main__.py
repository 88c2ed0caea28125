"""Entry point: `python -m acoustack_recorder`.

This process is the Celery worker on queue `recording`, with the prefork pool (one child), so the
record task's time limit is enforced. The pool child records, and it also serves gRPC: health
(following the recorder's saved health state) and SelfCheck (a test recording).

Why not the other services' layout (gRPC in the main process, the worker in a process of its own,
see acoustack.worker_process): that is three interpreters, about 130 MB on the device that also
records. gRPC must not run in a process that forks, and only the pool child never forks, so that is
where the server goes. Two processes, and the main one never touches gRPC. A pool child killed at
the time limit takes the server with it; the child that replaces it serves again within a second.
"""

from __future__ import annotations

import sys

from acoustack import prometheus
from acoustack.config import load_service_settings
from acoustack.errors import ConfigError
from acoustack.program_config import RecordingConfig
from acoustack.worker_process import port_is_free
from acoustack_recorder.settings import PREFIX, RecorderSettings
from acoustack_recorder.wiring import build_source, health_state_file, run_worker


def main() -> int:
    settings = load_service_settings(RecorderSettings, PREFIX, "acoustack-recorder")
    prometheus.prepare_metrics_dir(settings.metrics_dir)
    prometheus.start_exporter(
        settings.metrics_port, settings.metrics_host, metrics_dir=settings.metrics_dir
    )
    try:
        # A bad source setting fails here, before anything starts (at the default rate: the
        # program's own comes with the first task).
        build_source(settings, RecordingConfig()).close()
    except ConfigError as exc:
        print(f"acoustack-recorder: {exc}", file=sys.stderr)
        return 2
    if not port_is_free(settings.health_port):
        print(
            f"acoustack-recorder: RECORDER_HEALTH_PORT: port {settings.health_port} is taken "
            "(another recorder on this machine?); choose a free one",
            file=sys.stderr,
        )
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # A new start begins healthy; the recorder writes its state from here.
    health_state_file(settings).unlink(missing_ok=True)
    return run_worker(settings)


if __name__ == "__main__":
    sys.exit(main())
