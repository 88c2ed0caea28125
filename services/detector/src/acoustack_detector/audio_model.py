"""What the detector's gRPC `Model` server needs of a model: detections from audio or from a file.

The bundled BatDetect2 (ONNX) implements it; so can any in-process model. A model in another process
or language is reached through ``remote_model.RemoteModel`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from acoustack import schema


@runtime_checkable
class AudioModel(Protocol):
    name: str
    version: str
    # The rate the model works at (0: any); other rates are resampled by the model itself.
    samplerate_hz: int
    classes: Sequence[str]

    def detect_audio(
        self, samples: np.ndarray, samplerate_hz: int, time_expansion: float = 1.0
    ) -> list[schema.Detection]:
        """``samples``: float32 in [-1, 1], shape (frames,) or (frames, channels)."""
        ...

    def detect_file(self, path: Path, time_expansion: float = 1.0) -> list[schema.Detection]:
        """Raises InvalidArgumentError naming the file when it is not readable audio."""
        ...


def pcm_s16le_to_float(pcm: bytes, channels: int) -> np.ndarray:
    """Interleaved 16-bit PCM as float32 frames × channels (a trailing partial frame is dropped)."""
    samples = np.frombuffer(pcm, dtype="<i2")
    usable = len(samples) // channels * channels
    frames = samples[:usable].reshape(-1, channels)
    return (
        (frames.astype(np.float32) / np.float32(32768.0)).squeeze(axis=1)
        if channels == 1
        else (frames.astype(np.float32) / np.float32(32768.0))
    )
