"""Entry point: `python -m acoustack_dashboard`. The web pages on DASHBOARD_HTTP_PORT (see
``wiring``), until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from acoustack.config import load_service_settings
from acoustack_dashboard.settings import PREFIX, DashboardSettings
from acoustack_dashboard.wiring import Dashboard

log = logging.getLogger("acoustack_dashboard")


def main() -> int:
    settings = load_service_settings(DashboardSettings, PREFIX, "acoustack-dashboard")
    try:
        dashboard = Dashboard(settings).start()
    except OSError as exc:
        print(f"acoustack-dashboard: {exc}", file=sys.stderr)
        return 2
    log.info(
        "dashboard on http://%s:%d/ (storage %s, scheduler %s)",
        settings.http_host,
        dashboard.server.port,
        settings.storage_target,
        settings.control_target,
    )
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    stopping.wait()
    dashboard.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
