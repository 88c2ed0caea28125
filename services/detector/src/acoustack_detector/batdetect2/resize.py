"""The spectrogram's bilinear resize to the network's input size, as torch computes it.

batdetect2 calls ``torch.nn.functional.interpolate(spec, size=..., mode="bilinear",
align_corners=False)``. torch's CPU kernel maps output index i to the source position
``max(scale * (i + 0.5) - 0.5, 0)`` with ``scale = in / out`` (float32), interpolates along the
width first and then along the height, all in float32; so does this. Doing it here rather than in
the graph lets the first network block run on tiles of the result.
numpy only (model_build/export.py imports it in the build environment).
"""

from __future__ import annotations

import numpy as np


def _linear_taps(
    in_size: int, out_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each output index: the two source indices and their weights."""
    if in_size == out_size:
        index = np.arange(out_size)
        return index, index, np.ones(out_size, np.float32), np.zeros(out_size, np.float32)
    f32 = np.float32
    scale = f32(in_size) / f32(out_size)
    source = np.maximum(scale * (np.arange(out_size, dtype=f32) + f32(0.5)) - f32(0.5), f32(0))
    first = np.minimum(np.floor(source).astype(np.int64), in_size - 1)
    weight_second = np.clip(source - first.astype(f32), f32(0), f32(1))
    second = first + (first < in_size - 1)
    return first, second, f32(1) - weight_second, weight_second


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """[rows, columns] float32 -> [height, width] float32."""
    x0, x1, wx0, wx1 = _linear_taps(image.shape[1], width)
    y0, y1, wy0, wy1 = _linear_taps(image.shape[0], height)
    along_width = image[:, x0] * wx0
    along_width += image[:, x1] * wx1
    out = along_width[y0] * wy0[:, np.newaxis]
    out += along_width[y1] * wy1[:, np.newaxis]
    return out
