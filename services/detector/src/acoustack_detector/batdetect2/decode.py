"""From the graph's peaks to detections, with batdetect2 1.3.1's arithmetic and rounding.

batdetect2 (detector/post_process.py, utils/detector_utils.py) computes boxes in float32 torch
tensors, shifts them by the chunk's start time in float32, then rounds for its API output: times to
4 decimals, frequencies truncated to whole Hz, probabilities to 3 decimals. The same operations in
the same precision give the same numbers, down to which way a rounding goes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from acoustack import schema
from acoustack_detector.batdetect2.config import SpectrogramParameters

SPECIES_TAG_KEY = "species"


@dataclass(frozen=True)
class BatDetection:
    """One detected call, as batdetect2's API reports it (seconds, Hz, probabilities)."""

    start_time: float
    end_time: float
    low_freq: int
    high_freq: int
    class_name: str
    class_prob: float
    det_prob: float

    def as_dict(self) -> dict[str, float | int | str]:
        """batdetect2's own field names ("class", not "class_name")."""
        return {
            "start_time": self.start_time,
            "end_time": self.end_time,
            "low_freq": self.low_freq,
            "high_freq": self.high_freq,
            "class": self.class_name,
            "class_prob": self.class_prob,
            "det_prob": self.det_prob,
        }

    def to_schema(self) -> schema.Detection:
        """The shared schema's form: one species tag, the most probable class.

        batdetect2's result carries the top class and its probability per call, and acoupi's
        BatDetect2 model builds one tag from them; the other 16 probabilities are small by
        construction (they share 1 - background with the top one) and would make every message 17
        times larger only for the threshold cleaner to drop them.
        """
        return schema.Detection(
            box=schema.BoundingBox(
                start_time_s=self.start_time,
                end_time_s=self.end_time,
                low_freq_hz=float(self.low_freq),
                high_freq_hz=float(self.high_freq),
            ),
            detection_score=self.det_prob,
            tags=[
                schema.PredictedTag(
                    tag=schema.Tag(key=SPECIES_TAG_KEY, value=self.class_name),
                    confidence=self.class_prob,
                )
            ],
        )


def max_peaks(network_width: int, params: SpectrogramParameters, top_k_per_sec: float) -> int:
    """batdetect2's top-k for one chunk.

    It converts the *resized* width to seconds as if it were STFT frames (so about half the chunk's
    duration) before multiplying by nms_top_k_per_sec: 301 peaks for a 3 s chunk, not 600.
    """
    duration = (
        network_width * params.hop_samples + params.overlap_samples
    ) / params.target_samplerate_hz
    return int(duration * top_k_per_sec)


@dataclass(frozen=True)
class ChunkPeaks:
    """The graph's outputs for one chunk."""

    scores: np.ndarray  # [k] float32
    flat_index: np.ndarray  # [k] int64, row * width + column
    box_size: np.ndarray  # [2, k] float32, width and height in network pixels
    class_probs: np.ndarray  # [classes, k] float32


def decode_chunk(
    peaks: ChunkPeaks,
    *,
    network_width: int,
    chunk_start_s: float,
    threshold: float,
    params: SpectrogramParameters,
    class_names: tuple[str, ...],
    nyquist_hz: float,
) -> list[BatDetection]:
    keep = np.flatnonzero(peaks.scores > np.float32(threshold))
    if keep.size == 0:
        return []
    row, column = np.divmod(peaks.flat_index[keep], network_width)
    width, height = peaks.box_size[0, keep], peaks.box_size[1, keep]
    class_probs = peaks.class_probs[:, keep]

    f32 = np.float32
    hop, overlap = f32(params.hop_samples), f32(params.overlap_samples)
    rate, resize = f32(params.target_samplerate_hz), f32(params.resize_factor)
    column = column.astype(np.float32)
    start = (column / resize * hop + overlap) / rate + f32(chunk_start_s)
    end = ((column + width) / resize * hop + overlap) / rate + f32(chunk_start_s)
    freq_step = f32((params.max_freq_hz - params.min_freq_hz) / params.network_height)
    low = (f32(params.network_height) - row.astype(np.float32)) * freq_step + f32(
        params.min_freq_hz
    )
    high = low + height * freq_step
    best_class = class_probs.argmax(axis=0)
    best_prob = class_probs.max(axis=0)
    scores = peaks.scores[keep]

    detections = []
    for i in np.lexsort((low, start)):  # calls in time order (batdetect2 sorts by column only)
        detection = BatDetection(
            start_time=round(float(start[i]), 4),
            end_time=round(float(end[i]), 4),
            low_freq=int(low[i]),
            high_freq=int(high[i]),
            class_name=class_names[best_class[i]],
            class_prob=round(float(best_prob[i]), 3),
            det_prob=round(float(scores[i]), 3),
        )
        # batdetect2 drops boxes that reach above the recording's Nyquist frequency.
        if detection.high_freq <= nyquist_hz:
            detections.append(detection)
    return detections
