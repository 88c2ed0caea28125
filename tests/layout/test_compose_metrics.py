"""compose exposes each service's Prometheus port, and labels it for a scraper."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("storage", "detector", "recorder", "messenger", "scheduler")


def test_each_service_serves_metrics_on_the_port_it_is_labelled_with():
    compose = yaml.safe_load((REPO / "compose" / "compose.yaml").read_text())["services"]
    ports = set()
    for name in SERVICES:
        service = compose[name]
        port = service["environment"][f"{name.upper()}_METRICS_PORT"]
        assert service["labels"]["prometheus.io/scrape"] == "true", name
        assert service["labels"]["prometheus.io/port"] == port, name
        assert service["expose"] == [port], name
        assert service["environment"]["PROMETHEUS_MULTIPROC_DIR"], name
        ports.add(port)
    assert len(ports) == len(SERVICES), "one port each"
