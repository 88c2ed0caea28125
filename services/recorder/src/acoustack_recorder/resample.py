"""`python -m acoustack_recorder.resample FILE RATE`: a WAV file's first channel at RATE, as 16-bit
little-endian PCM on stdout, for the replay source (sources.py). A process of its own, because
numpy, which it needs, would otherwise stay resident in the recorder's processes (about 13 MB each)
for a resampling done once per start.
"""

from __future__ import annotations

import sys
import wave

import numpy as np


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
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: python -m acoustack_recorder.resample FILE RATE", file=sys.stderr)
        return 2
    path, rate = argv[0], int(argv[1])
    try:
        with wave.open(path, "rb") as wav:
            if wav.getsampwidth() != 2:
                print(f"{path}: only 16-bit PCM WAV can be replayed", file=sys.stderr)
                return 1
            data = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
            first = data.reshape(-1, wav.getnchannels())[:, 0]
            from_hz = wav.getframerate()
    except (OSError, EOFError, wave.Error) as exc:
        print(f"{path}: not a readable WAV file ({exc})", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(resample(first, from_hz, rate).astype("<i2").tobytes())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
