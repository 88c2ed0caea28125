"""A WAV file's first channel as 16-bit PCM, with the standard library alone: shared by the replay
source and its resampling process (resample.py), which must stay light (see there)."""

from __future__ import annotations

import array
import wave
from pathlib import Path


class UnreadableWav(ValueError):
    """The message names the file and what is wrong with it."""


def read_first_channel(path: Path) -> tuple[bytes, int]:
    """A WAV file's first channel, as 16-bit PCM bytes, and its rate."""
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise UnreadableWav(f"{path}: only 16-bit PCM WAV can be replayed")
            data, channels = wav.readframes(wav.getnframes()), wav.getnchannels()
            rate = wav.getframerate()
    except (OSError, EOFError, RuntimeError, wave.Error) as exc:
        raise UnreadableWav(f"{path}: not a readable WAV file ({exc})") from None
    if channels > 1:
        data = array.array("h", data)[::channels].tobytes()  # bytes as they are: no byte swap
    return data, rate
