"""Prometheus metrics: the names every service exports, in one place, and the exporter each service
starts on its own port (`<PREFIX>_METRICS_PORT`, `/metrics`).

Names follow Prometheus conventions: an ``acoustack_`` prefix, base units in the name (seconds),
``_total`` on counters (prometheus-client adds it), labels for what varies (status, species,
queue, state).

Work done in Celery pool processes is counted in prometheus-client's multiprocess mode: with
``PROMETHEUS_MULTIPROC_DIR`` set (compose and k3s set it; a service empties it at start), each
process writes its values there and the exporter sums them. What describes the device now (the
outbox, queue depths, the last recording's age) is read when Prometheus scrapes, by collectors in
the service's main process, so it is never stale.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# Counted where the work is done (a pool process).
RECORDINGS = Counter(
    "acoustack_recordings", "Recording slots the recorder ran, by outcome", ["status"]
)
DETECTIONS = Counter(
    "acoustack_detections", "Detections in the model outputs stored, by species", ["species"]
)
INFERENCE_SECONDS = Histogram(
    "acoustack_inference_seconds",
    "Time the model took on one recording, by model",
    ["model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
MESSAGE_RESPONSES = Counter(
    "acoustack_message_responses",
    "Responses to message sends, by status (success, failed, error, timeout)",
    ["status"],
)
# Every metric here has labels: its values are made at first use, in the process doing the work,
# after the service has prepared PROMETHEUS_MULTIPROC_DIR.

# Read at scrape time (see ``ScrapeCollector``).
OUTBOX_MESSAGES = "acoustack_outbox_messages"
QUEUE_DEPTH = "acoustack_queue_depth"
LAST_RECORDING_AGE = "acoustack_last_recording_age_seconds"
STORED_RECORDINGS = "acoustack_stored_recordings"
SCRAPE_ERRORS = "acoustack_scrape_errors"


def gauge(
    name: str, documentation: str, values: Mapping[str, float] | float, label: str = ""
) -> GaugeMetricFamily:
    """One gauge: a single value, or one value per ``label`` value."""
    if not isinstance(values, Mapping):
        return GaugeMetricFamily(name, documentation, value=values)
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


class ScrapeCollector(Collector):
    """Metrics read when Prometheus scrapes. A source that cannot answer (storage or RabbitMQ
    down) leaves its metrics out and counts in ``acoustack_scrape_errors``, rather than failing
    the scrape: the other metrics still say what is wrong."""

    def __init__(self, read: Callable[[], Iterable[Metric]], source: str) -> None:
        self.read = read
        self.source = source
        self.errors = 0

    def collect(self) -> Iterable[Metric]:
        try:
            found = list(self.read())
        except Exception as exc:
            self.errors += 1
            log.warning("metrics: %s could not be read: %s", self.source, exc)
            found = []
        errors = GaugeMetricFamily(
            SCRAPE_ERRORS, "Scrapes a metrics source could not answer", labels=["source"]
        )
        errors.add_metric([self.source], self.errors)
        return [*found, errors]

    def describe(self) -> Iterable[Metric]:
        return []  # read at scrape time only: never at registration


def prepare_metrics_dir(metrics_dir: Path | None) -> None:
    """Empty the multiprocess directory at a service's start: values left by an earlier run
    would be summed into this one's."""
    if metrics_dir is None:
        return
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()


def start_exporter(
    port: int,
    host: str = "0.0.0.0",
    *,
    metrics_dir: Path | None = None,
    collectors: Iterable[Collector] = (),
) -> Any:
    """Serve /metrics on ``port`` (0: no exporter); returns the HTTP server, or None."""
    if not port:
        return None
    if metrics_dir is not None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(metrics_dir))
    else:
        registry = REGISTRY
    for collector in collectors:
        registry.register(collector)
    server, _thread = start_http_server(port, host, registry=registry)
    log.info("metrics on http://%s:%d/metrics", host, server.server_port)
    return server
