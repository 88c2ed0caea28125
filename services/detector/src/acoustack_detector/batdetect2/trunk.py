"""The network's trunk on column tiles: the encoder and decoder on overlapping ranges of columns,
the attention bottleneck on the whole width.

numpy only (no acoustack imports): model_build/export.py imports this file straight from the
source tree to check the tiles against the whole width, so it checks the code the detector runs.

The trunk's graphs (model_build/export.py):
  encoder     resized [1, 1, 128, c] -> skip_1 [1, 32, 64, c/2], skip_2 [1, 64, 32, c/4],
              skip_3 [1, 256, 16, c/8]: convolutions and max-pools, each column depends on a few
              neighbours only.
  bottleneck  skip_3 of the whole width -> [1, 256, 1, width/8]: self-attention over all columns.
  decoder     the bottleneck's and the three skips' columns -> features [1, 32, 64, c/2].
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# Three 2x2 max-pools: a tile that starts on a multiple of 8 resized columns pools the same
# pairs of columns as the whole width does.
POOLING_STRIDE = 8


class Session(Protocol):
    def run(self, output_names: None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]: ...


@dataclass(frozen=True)
class Tile:
    """Columns first..stop-1 are kept; lo..hi-1 are computed (the halo is the difference)."""

    first: int
    stop: int
    lo: int
    hi: int


def column_tiles(width: int, tile: int, halo: int) -> Iterator[Tile]:
    for first in range(0, width, tile):
        stop = min(first + tile, width)
        yield Tile(first, stop, max(first - halo, 0), min(stop + halo, width))


@dataclass(frozen=True)
class Trunk:
    encoder: Session
    bottleneck: Session
    decoder: Session
    # Context each side, in each graph's input columns: resized columns (a multiple of the
    # pooling stride) for the encoder, bottleneck columns (width / 8) for the decoder.
    encoder_halo: int
    decoder_halo: int

    def run(self, resized: np.ndarray, tile_columns: int | None) -> np.ndarray:
        """resized [1, 1, 128, width] -> features [1, 32, 64, width / 2], on tiles of
        tile_columns resized columns (a multiple of 8; None: the whole width at once)."""
        width = resized.shape[-1]
        if width % POOLING_STRIDE:
            raise ValueError(f"the trunk needs a width divisible by {POOLING_STRIDE}, got {width}")
        tile = tile_columns or width
        if tile % POOLING_STRIDE or self.encoder_halo % POOLING_STRIDE:
            raise ValueError(
                f"tiles ({tile}) and the encoder's halo ({self.encoder_halo}) must be multiples "
                f"of {POOLING_STRIDE} columns"
            )
        skips = self._encode(resized, tile)
        bottleneck = self.bottleneck.run(None, {"skip_3": skips[2]})[0]
        return self._decode(bottleneck, skips, tile // POOLING_STRIDE)

    def _encode(self, resized: np.ndarray, tile: int) -> list[np.ndarray]:
        width = resized.shape[-1]
        skips: list[np.ndarray] = []
        for t in column_tiles(width, tile, self.encoder_halo):
            outputs = self.encoder.run(None, {"resized": resized[..., t.lo : t.hi]})
            if not skips:
                # The whole width's skips, filled tile by tile: skip_n is 2**n times narrower.
                skips = [
                    np.empty((*out.shape[:-1], width >> level), dtype=out.dtype)
                    for level, out in enumerate(outputs, 1)
                ]
            for level, (out, whole) in enumerate(zip(outputs, skips, strict=True), 1):
                kept = slice((t.first - t.lo) >> level, (t.stop - t.lo) >> level)
                whole[..., t.first >> level : t.stop >> level] = out[..., kept]
            del outputs
        return skips

    def _decode(self, bottleneck: np.ndarray, skips: list[np.ndarray], tile: int) -> np.ndarray:
        skip_1, skip_2, skip_3 = skips
        columns = bottleneck.shape[-1]
        # The features are written over skip_1 (same shape), saving a whole-width array: the
        # decoder adds skip_1 after its last convolution, so a kept column reads skip_1 at that
        # column only, and a later tile reads the overwritten columns only in its halo, which it
        # does not keep.
        features = skip_1
        for t in column_tiles(columns, tile, self.decoder_halo):
            (out,) = self.decoder.run(
                None,
                {
                    "bottleneck": bottleneck[..., t.lo : t.hi],
                    "skip_3": skip_3[..., t.lo : t.hi],
                    "skip_2": skip_2[..., 2 * t.lo : 2 * t.hi],
                    "skip_1": skip_1[..., 4 * t.lo : 4 * t.hi],
                },
            )
            kept = slice(4 * (t.first - t.lo), 4 * (t.stop - t.lo))
            features[..., 4 * t.first : 4 * t.stop] = out[..., kept]
            del out
        return features
