"""What the detector's main process holds: it takes tasks from the broker and hands them to its
pool children, which run the model. The model's libraries are imported in a child, after the fork
(wiring.run_worker), so the main process does not keep pages of them that only a child uses."""

from __future__ import annotations

import logging
import subprocess
import sys

from acoustack_detector import wiring
from acoustack_detector.settings import DetectorSettings

# Everything the main process runs up to the fork: the entry point's imports, the settings, the
# Celery app with the detect task registered and the pool child's gRPC start connected.
BEFORE_THE_FORK = """
import sys
from acoustack.celery_app import create_app
from acoustack.worker_process import serve_from_pool_child
import acoustack_detector.__main__
from acoustack_detector import wiring
from acoustack_detector.settings import DetectorSettings
from acoustack_detector.tasks import register_detect_task
settings = DetectorSettings(broker_url="amqp://127.0.0.1:1//", storage_target="127.0.0.1:1")
bundled = wiring.LazyModel(lambda: wiring.load_bundled(settings))
serve_from_pool_child(lambda: wiring.serve_grpc(settings, bundled))
register_detect_task(create_app(settings.broker_url), lambda: wiring.make_detector(settings, bundled))
print(" ".join(m for m in ("numpy", "onnxruntime", "acoustack_detector.pipeline",
                           "acoustack_detector.servicer", "acoustack.clients") if m in sys.modules))
"""


def test_the_main_process_leaves_the_model_and_its_libraries_to_the_pool_children():
    done = subprocess.run(
        [sys.executable, "-c", BEFORE_THE_FORK], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"imported before the fork: {done.stdout.strip()}"


def test_a_missing_model_is_reported_when_the_first_child_starts(tmp_path, caplog):
    settings = DetectorSettings(
        broker_url="amqp://127.0.0.1:1//", storage_target="127.0.0.1:1", model_dir=tmp_path
    )
    with caplog.at_level(logging.ERROR, logger="acoustack_detector"):
        wiring.report_missing_model(settings)
    assert "the bundled model cannot be loaded" in caplog.text
    assert str(tmp_path) in caplog.text and "make model" in caplog.text
