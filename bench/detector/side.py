"""One side of the detector benchmark, in its own process: load, warm up, time, report.

    python side.py acoustack FILE...   (workspace venv: acoustack_detector)
    python side.py reference FILE...   (build/model-env: batdetect2 1.3.1 with torch)

Each side processes every file a first time (warm-up, results kept for the parity check), then
ROUNDS more times; for each file the least CPU time (user + system of every thread,
time.process_time) over the rounds is kept. Prints one JSON object: per-file CPU seconds and
detections (batdetect2's fields), and the process's peak resident memory (VmHWM).
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

ROUNDS = 3


def peak_rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024


def acoustack_detector():
    from acoustack_detector.batdetect2 import BatDetect2Onnx

    model = BatDetect2Onnx.load()  # default settings, as the service runs it

    def detect(path: str) -> list[dict]:
        return [d.as_dict() for d in model.predict_file(path)]

    return detect


def batdetect2_reference():
    import batdetect2.api as api

    config = api.get_config()
    fields = ("start_time", "end_time", "low_freq", "high_freq", "class", "class_prob", "det_prob")

    def detect(path: str) -> list[dict]:
        result = api.process_file(path, config=config)
        return [{f: call[f] for f in fields} for call in result["pred_dict"]["annotation"]]

    return detect


def main(side: str, files: list[str]) -> None:
    detect = acoustack_detector() if side == "acoustack" else batdetect2_reference()
    detections = {path: detect(path) for path in files}
    cpu_s = {}
    for path in files:
        best = float("inf")
        for _ in range(ROUNDS):
            started = time.process_time()
            detect(path)
            best = min(best, time.process_time() - started)
        cpu_s[path] = best
    json.dump({"cpu_s": cpu_s, "detections": detections, "peak_rss_mb": peak_rss_mb()}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
