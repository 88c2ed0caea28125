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
The head (model.py) reads the features in windows as the decoder makes them, so neither the
features nor skip_1 and skip_2 are ever held whole once the decoder has passed.
"""

from __future__ import annotations

from collections import deque
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


class ColumnPieces:
    """A whole-width array held as consecutive pieces of columns, so that the pieces no later
    tile reads can be freed while the rest is still in use."""

    def __init__(self) -> None:
        self._pieces: deque[tuple[int, np.ndarray]] = deque()

    def append(self, first: int, piece: np.ndarray) -> None:
        self._pieces.append((first, piece))

    def take(self, lo: int, hi: int) -> np.ndarray:
        """Columns lo..hi-1 (a view when one piece holds them all, else a copy)."""
        parts = [
            piece[..., max(lo - first, 0) : hi - first]
            for first, piece in self._pieces
            if first < hi and first + piece.shape[-1] > lo
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)

    def drop_before(self, column: int) -> None:
        """Free the pieces that end at or before ``column``."""
        while self._pieces:
            first, piece = self._pieces[0]
            if first + piece.shape[-1] > column:
                return
            self._pieces.popleft()


@dataclass(frozen=True)
class Encoded:
    """The encoder's output for one chunk: skip_3 whole (the bottleneck reads all of it), skip_1
    and skip_2 in pieces, freed as the decoder passes them."""

    skip_1: ColumnPieces
    skip_2: ColumnPieces
    skip_3: np.ndarray
    tile: int  # resized columns per tile


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
        features: np.ndarray | None = None
        for t, window in self.features(self.encode(resized, tile_columns), halo=0):
            if features is None:
                features = np.empty((*window.shape[:-1], resized.shape[-1] // 2), window.dtype)
            features[..., t.first : t.stop] = window
        assert features is not None  # a width of at least 8 gives at least one tile
        return features

    def encode(self, resized: np.ndarray, tile_columns: int | None) -> Encoded:
        """The encoder on tiles of resized [1, 1, 128, width]; the caller may free ``resized``
        once this returns."""
        width = resized.shape[-1]
        if width % POOLING_STRIDE:
            raise ValueError(f"the trunk needs a width divisible by {POOLING_STRIDE}, got {width}")
        tile = tile_columns or width
        if tile % POOLING_STRIDE or self.encoder_halo % POOLING_STRIDE:
            raise ValueError(
                f"tiles ({tile}) and the encoder's halo ({self.encoder_halo}) must be multiples "
                f"of {POOLING_STRIDE} columns"
            )
        skip_1, skip_2 = ColumnPieces(), ColumnPieces()
        skip_3: np.ndarray | None = None
        for t in column_tiles(width, tile, self.encoder_halo):
            out_1, out_2, out_3 = self.encoder.run(None, {"resized": resized[..., t.lo : t.hi]})
            # skip_n is 2**n times narrower than resized. Kept columns are copied out so that the
            # tile's halo is not held with them.
            for level, out, pieces in ((1, out_1, skip_1), (2, out_2, skip_2)):
                kept = out[..., (t.first - t.lo) >> level : (t.stop - t.lo) >> level]
                pieces.append(t.first >> level, np.ascontiguousarray(kept))
            if skip_3 is None:
                skip_3 = np.empty((*out_3.shape[:-1], width >> 3), dtype=out_3.dtype)
            skip_3[..., t.first >> 3 : t.stop >> 3] = out_3[
                ..., (t.first - t.lo) >> 3 : (t.stop - t.lo) >> 3
            ]
            del out_1, out_2, out_3
        assert skip_3 is not None
        return Encoded(skip_1, skip_2, skip_3, tile)

    def features(self, encoded: Encoded, halo: int) -> Iterator[tuple[Tile, np.ndarray]]:
        """The bottleneck, then the decoder on tiles: for each tile of the features (the
        trunk's output, [1, 32, 64, width / 2]; tiles of half the encoder's), that tile and its
        Tile, with ``halo`` columns of context each side (fewer at the edges).

        The features are never whole: each window is yielded as soon as the decoder has
        reached its last column, and the decoder's output, skip_1 and skip_2 are freed once no
        later tile reads them."""
        bottleneck = self.bottleneck.run(None, {"skip_3": encoded.skip_3})[0]
        columns = bottleneck.shape[-1]
        # Bottleneck columns are 4 feature columns wide, 2 of skip_2, 1 of skip_3.
        windows = column_tiles(4 * columns, 4 * (encoded.tile // POOLING_STRIDE), halo)
        pending = next(windows, None)
        decoded = ColumnPieces()
        for t in column_tiles(columns, encoded.tile // POOLING_STRIDE, self.decoder_halo):
            (out,) = self.decoder.run(
                None,
                {
                    "bottleneck": bottleneck[..., t.lo : t.hi],
                    "skip_3": encoded.skip_3[..., t.lo : t.hi],
                    "skip_2": encoded.skip_2.take(2 * t.lo, 2 * t.hi),
                    "skip_1": encoded.skip_1.take(4 * t.lo, 4 * t.hi),
                },
            )
            kept = out[..., 4 * (t.first - t.lo) : 4 * (t.stop - t.lo)]
            decoded.append(4 * t.first, np.ascontiguousarray(kept))
            del out, kept
            # The next decoder tile starts its context decoder_halo columns before t.stop.
            later = max(t.stop - self.decoder_halo, 0)
            encoded.skip_1.drop_before(4 * later)
            encoded.skip_2.drop_before(2 * later)
            while pending is not None and pending.hi <= 4 * t.stop:
                yield pending, decoded.take(pending.lo, pending.hi)
                pending = next(windows, None)
                decoded.drop_before(pending.lo if pending is not None else 4 * columns)
