"""`python -m acoustack_recorder.resample RATE FILE...`: the WAV files' first channels at RATE, one
after the other, as 16-bit little-endian PCM on stdout, for the replay source (sources.py).

A process of its own, because numpy, which it needs, would otherwise stay resident in the
recorder's processes (about 13 MB each) for a resampling done once per start. It imports numpy and
the standard library only, and runs once for all the files: each process that ends unmaps what it
used, and the kernel moves library pages that two exiting processes used to its active list, where
`docker stats` counts them against whichever container read them first. Run once per source, with
grpcio loaded, it put about 17 MiB there on a cold start (bench/README.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from acoustack_recorder.first_channel import UnreadableWav, read_first_channel


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Band-limited resampling through the spectrum: fine for demo material."""
    if from_hz == to_hz:
        return samples
    count = round(len(samples) * to_hz / from_hz)
    spectrum = np.fft.rfft(samples.astype(np.float32))
    wanted = count // 2 + 1
    spectrum = (
        spectrum[:wanted]
        if wanted <= len(spectrum)
        else np.pad(spectrum, (0, wanted - len(spectrum)))
    )
    out = np.fft.irfft(spectrum, n=count) * (count / len(samples))
    return np.clip(out, -32768, 32767).astype(np.int16)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not argv[0].isdigit():
        print("usage: python -m acoustack_recorder.resample RATE FILE...", file=sys.stderr)
        return 2
    rate = int(argv[0])
    for path in map(Path, argv[1:]):
        try:
            data, from_hz = read_first_channel(path)
        except UnreadableWav as exc:
            print(exc, file=sys.stderr)
            return 1
        first = np.frombuffer(data, "<i2")
        sys.stdout.buffer.write(resample(first, from_hz, rate).astype("<i2").tobytes())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
