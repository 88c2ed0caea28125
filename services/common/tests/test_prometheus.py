"""The exporter every service starts (acoustack.prometheus), over a real HTTP port: scrape-time
metrics that cannot be read leave the scrape working and say so; counts made in other processes
(Celery's pool) are summed in multiprocess mode."""

from __future__ import annotations

import subprocess
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from acoustack import prometheus
from acoustack.testing.servers import free_port


def scrape(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_source_that_cannot_answer_is_counted_and_the_scrape_still_works(tmp_path):
    answers = iter([{"due": 3, "sent": 5}, ConnectionError("storage unreachable")])

    def read():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        yield prometheus.gauge("acoustack_test_outbox", "test", answer, "state")

    port = free_port()
    server = prometheus.start_exporter(
        port,
        "127.0.0.1",
        metrics_dir=tmp_path,
        collectors=[prometheus.ScrapeCollector(read, "the test's store")],
    )
    try:
        first = scrape(port)
        assert first[("acoustack_test_outbox", (("state", "due"),))] == 3
        assert first[("acoustack_scrape_errors", (("source", "the test's store"),))] == 0
        second = scrape(port)
        assert ("acoustack_test_outbox", (("state", "due"),)) not in second
        assert second[("acoustack_scrape_errors", (("source", "the test's store"),))] == 1
    finally:
        server.shutdown()


COUNT_IN_A_CHILD = """
import sys
from acoustack import prometheus
for _ in range(int(sys.argv[1])):
    prometheus.RECORDINGS.labels("recorded").inc()
prometheus.INFERENCE_SECONDS.labels("test-model").observe(0.3)
"""


def test_counts_of_other_processes_are_summed_in_multiprocess_mode(tmp_path):
    (tmp_path / "counter_999999.db").write_bytes(b"left by an earlier run")
    prometheus.prepare_metrics_dir(tmp_path)
    assert list(tmp_path.iterdir()) == []  # an earlier run's values are not summed in
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for count in (2, 3):  # two worker processes, each its own
        subprocess.run([sys.executable, "-c", COUNT_IN_A_CHILD, str(count)], env=env, check=True)
    port = free_port()
    server = prometheus.start_exporter(port, "127.0.0.1", metrics_dir=tmp_path)
    try:
        samples = scrape(port)
    finally:
        server.shutdown()
    assert samples[("acoustack_recordings_total", (("status", "recorded"),))] == 5
    assert samples[("acoustack_inference_seconds_count", (("model", "test-model"),))] == 2


def test_port_zero_starts_no_exporter():
    assert prometheus.start_exporter(0) is None
