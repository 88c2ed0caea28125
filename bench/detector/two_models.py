"""Two models on the same recordings: the bundled BatDetect2 in process and the example model server
(examples/energy_model) as its own process, run as the detect task runs `detection.extra_models`
(``acoustack_detector.tasks.run_all``'s threads: both at once), against the two run one after the
other. Wall time per second of audio, best of ROUNDS, on the ten 3 s recordings of run.py.

    detector_two_models_ms_per_audio_s: X ms (reference Y ms, ratio Z x)

The reference is the sequential run; the ratio is sequential / parallel (2 at best on two cores:
BatDetect2 takes one, the server another). Called by run.py (`make bench-detector`); runs on its
own too: `python bench/detector/two_models.py` (needs `make model`, not the torch environment).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import tempfile
import time
import uuid
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from acoustack import schema
from acoustack.healthcheck import check
from acoustack.testing.servers import free_port
from acoustack_detector import testing
from acoustack_detector.local_model import LocalModel
from acoustack_detector.remote_model import RemoteModel

REPO = Path(__file__).resolve().parents[2]
AUDIO = REPO / "services" / "detector" / "tests" / "data" / "audio"
EXAMPLE = REPO / "examples" / "energy_model" / "energy_model.py"
FILES, SECONDS, ROUNDS = 10, 3.0, 3


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def recording_of(path: Path) -> schema.Recording:
    with wave.open(str(path), "rb") as wav:
        rate, frames = wav.getframerate(), wav.getnframes()
    return schema.Recording(
        deployment_id=uuid.uuid4(), device_id="bench", path=str(path),
        started_at=dt.datetime.now(dt.UTC), duration_s=frames / rate,
        capture_samplerate_hz=rate,
    )  # fmt: skip


def measure(files: list[Path]) -> tuple[float, float]:
    """(parallel, sequential) wall ms per audio second, best of ROUNDS each."""
    from acoustack_detector.batdetect2 import BatDetect2Onnx

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--port", str(port), "--recordings-root", str(files[0].parent)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        target = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while not check(target)[0]:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the example model server did not start")
            time.sleep(0.1)
        models = [LocalModel(BatDetect2Onnx.load()), RemoteModel(target)]
        recordings = [recording_of(path) for path in files]
        for model in models:  # warm-up: sessions, connections, caches
            model.run(recordings[0])
        audio_s = sum(r.duration_s for r in recordings)
        with ThreadPoolExecutor(max_workers=len(models)) as pool:

            def parallel() -> None:
                for recording in recordings:
                    list(pool.map(lambda m, r=recording: m.run(r), models))

            def sequential() -> None:
                for recording in recordings:
                    for model in models:
                        model.run(recording)

            best = {}
            for name, run in (("parallel", parallel), ("sequential", sequential)):
                times = []
                for _ in range(ROUNDS):
                    started = time.perf_counter()
                    run()
                    times.append(time.perf_counter() - started)
                best[name] = 1000 * min(times) / audio_s
                log(f"two models, {name}: {[f'{t:.2f}' for t in times]} s for {audio_s:g} s")
        models[1].close()
        return best["parallel"], best["sequential"]
    finally:
        server.terminate()
        server.wait(10)


def line(files: list[Path]) -> str:
    parallel, sequential = measure(files)
    return (
        f"detector_two_models_ms_per_audio_s: {parallel:.0f} ms (reference {sequential:.0f} ms, "
        f"ratio {sequential / parallel:.1f} x)"
    )


def main(given: list[str]) -> int:
    """``given``: the recordings (run.py's); none: ten made here."""
    if given:
        print(line([Path(p).resolve() for p in given]))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-two-models-") as scratch:
        files = [
            testing.make_long_recording(
                AUDIO, Path(scratch) / f"short-{i}.wav", duration_s=SECONDS, offset_s=0.13 * i
            )
            for i in range(FILES)
        ]
        print(line(files))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
