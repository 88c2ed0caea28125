"""Rational-rate resampling in numpy, numerically the same as ``scipy.signal.resample_poly``.

batdetect2 resamples with ``librosa.resample(res_type="polyphase")``, i.e. ``resample_poly`` with
its default anti-aliasing filter: a Kaiser-windowed (beta 5) sinc low-pass of ``20 * max(up, down)
+ 1`` taps, cut off at the lower of the two Nyquist rates, zero padding at both ends. Importing
scipy.signal costs about 75 MB of resident memory and most of a second, so this module re-derives
the same filter and evaluates it polyphase:

    y[m] = sum_i taps[r + up * i] * x[q - i],   q, r = divmod(m * down + half_len, up)

The m that share a phase r advance through x by ``down`` samples per ``up`` outputs. Cutting x
into rows of a multiple of ``down`` samples turns all phases into one matrix product (rows x the
taps laid out per phase and per row offset) followed by a sum along diagonals: a handful of BLAS
calls per block instead of a loop per sample. Outputs differ from scipy's only by float32
summation order.

``ResampledSignal`` gives any range of the resampled signal on its own, reading only the input it
needs, so a long recording is resampled chunk by chunk with the same result as resampling it whole
(and never held in memory at its capture rate).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

# Input reader: (start, stop) -> float32 samples start..stop-1 (both within the recording).
ReadSamples = Callable[[int, int], np.ndarray]

_KAISER_BETA = 5.0
# Outputs computed per matrix product: keeps the intermediate product in cache.
_BLOCK_OUTPUTS = 16384
# Narrowest input row handed to the matrix product.
_MIN_ROW_INPUTS = 32
# The weights grow with up * down: refuse rate pairs whose filter would not fit comfortably (the
# sample rates recorders use need at most a few MB; 44.1 kHz -> 256 kHz needs 9 MB).
_MAX_WEIGHT_BYTES = 64 << 20


def lowpass_taps(up: int, down: int) -> np.ndarray:
    """resample_poly's default filter (float64, before scaling by ``up``)."""
    max_rate = max(up, down)
    half_len = 10 * max_rate
    num_taps = 2 * half_len + 1
    cutoff = 1.0 / max_rate
    centred = np.arange(num_taps) - (num_taps - 1) / 2.0
    taps = cutoff * np.sinc(cutoff * centred) * np.kaiser(num_taps, _KAISER_BETA)
    return taps / taps.sum()


def resampled_length(num_samples: int, from_hz: int, to_hz: int) -> int:
    """The length librosa.resample gives: ceil(n * ratio), with the ratio as a float."""
    return int(np.ceil(num_samples * (float(to_hz) / from_hz)))


class PolyphaseFilter:
    """resample_poly's filter for ``from_hz`` -> ``to_hz`` (integers), on any output range."""

    def __init__(self, from_hz: int, to_hz: int, dtype: np.dtype | type = np.float32) -> None:
        if from_hz <= 0 or to_hz <= 0:
            raise ValueError(f"sample rates must be positive, got {from_hz} -> {to_hz}")
        common = math.gcd(from_hz, to_hz)
        self.up = to_hz // common
        self.down = from_hz // common
        self.dtype = np.dtype(dtype)
        self._layout_phases()

    def _layout_phases(self) -> None:
        up, down = self.up, self.down
        # The weights take at least this much (one lag; see below): refuse an awkward rate pair
        # before the taps are made, which for such a pair alone takes seconds.
        group = -(-_MIN_ROW_INPUTS // down)
        least_bytes = group * down * group * up * self.dtype.itemsize
        if least_bytes > _MAX_WEIGHT_BYTES:
            raise ValueError(
                f"resampling by {up}/{down} needs a filter of more than {least_bytes >> 20} MB: "
                "use a standard sample rate"
            )
        half_len = 10 * max(up, down)
        # scipy casts the taps to the signal's dtype and then scales by `up` in that dtype.
        taps = lowpass_taps(up, down).astype(self.dtype)
        taps *= self.dtype.type(up)
        # Output m = phase + up * k uses inputs start[phase] + down * k + t, t = 0..len(taps)-1.
        self._phase_taps: list[np.ndarray] = []
        starts = []
        for phase in range(up):
            centre, tap_offset = divmod(phase * down + half_len, up)
            used = np.ascontiguousarray(taps[tap_offset::up][::-1])  # oldest input first
            self._phase_taps.append(used)
            starts.append(centre - len(used) + 1)
        self._first_input = min(starts)
        self._phase_offsets = [start - self._first_input for start in starts]
        # Inputs one group of `up` outputs reaches over, counted from its first input.
        span = max(o + len(t) for o, t in zip(self._phase_offsets, self._phase_taps, strict=True))
        # Cut the input into rows of `group * down` samples, each row feeding `group * up` outputs:
        # an output row then needs its own input row and the next `lags - 1`, so a block of rows
        # is one matrix product (rows x weights) followed by a sum along `lags` diagonals. The
        # weights hold zeros where a phase does not reach (up to ~6x more multiplications than
        # the taps need at 500 kHz) but one large BLAS product beats a call per phase or per tap;
        # `group` keeps the rows at least _MIN_ROW_INPUTS wide so small ratios (384 kHz: down 3)
        # still give BLAS a useful inner dimension.
        self._group = -(-_MIN_ROW_INPUTS // down)
        width = self._group * down
        self._lags = -(-((self._group - 1) * down + span) // width)
        weight_bytes = width * self._lags * self._group * up * self.dtype.itemsize
        if weight_bytes > _MAX_WEIGHT_BYTES:
            raise ValueError(
                f"resampling by {up}/{down} needs a {weight_bytes >> 20} MB filter: "
                "use a standard sample rate"
            )
        weights = np.zeros((width, self._lags, self._group * up), dtype=self.dtype)
        for block in range(self._group):
            for phase, (offset, used) in enumerate(
                zip(self._phase_offsets, self._phase_taps, strict=True)
            ):
                position = block * down + offset + np.arange(len(used))
                weights[position % width, position // width, block * up + phase] = used
        self._weights = weights.reshape(width, -1)

    def compute(self, read: ReadSamples, num_inputs: int, start: int, stop: int) -> np.ndarray:
        """Filter outputs ``start..stop-1``; inputs outside ``0..num_inputs-1`` count as zeros
        (scipy's ``padtype="constant"``)."""
        row_outputs = self._group * self.up
        first_row, end_row = start // row_outputs, -(-stop // row_outputs)
        out = np.empty((end_row - first_row, row_outputs), dtype=self.dtype)
        rows_per_block = max(1, _BLOCK_OUTPUTS // row_outputs)
        for row in range(first_row, end_row, rows_per_block):
            rows = min(rows_per_block, end_row - row)
            target = out[row - first_row : row - first_row + rows]
            self._rows_by_product(read, num_inputs, row, target)
        skip = start - first_row * row_outputs
        return out.reshape(-1)[skip : skip + stop - start]

    def _rows_by_product(
        self, read: ReadSamples, num_inputs: int, row: int, target: np.ndarray
    ) -> None:
        rows, lags = target.shape[0], self._lags
        width = self._group * self.down
        first = self._first_input + row * width
        samples = self._read_padded(read, num_inputs, first, (rows + lags - 1) * width)
        products = (samples.reshape(-1, width) @ self._weights).reshape(rows + lags - 1, lags, -1)
        np.copyto(target, products[:rows, 0])
        for lag in range(1, lags):
            target += products[lag : lag + rows, lag]

    def _read_padded(
        self, read: ReadSamples, num_inputs: int, first: int, count: int
    ) -> np.ndarray:
        lo, hi = max(first, 0), min(first + count, num_inputs)
        if lo >= hi:
            return np.zeros(count, dtype=self.dtype)
        if lo == first and hi == first + count:
            return np.asarray(read(lo, hi), dtype=self.dtype)
        samples = np.zeros(count, dtype=self.dtype)
        samples[lo - first : hi - first] = read(lo, hi)
        return samples


@functools.lru_cache(maxsize=8)
def polyphase_filter(from_hz: int, to_hz: int, dtype: str = "<f4") -> PolyphaseFilter:
    """The filter for a rate pair, built once: recorders keep to one or two rates."""
    return PolyphaseFilter(from_hz, to_hz, np.dtype(dtype))


class ResampledSignal:
    """A recording as librosa.resample(..., res_type="polyphase") returns it, read by range.

    ``length`` is librosa's: ``ceil(n * (to_hz / from_hz))`` computed with a float ratio, which can
    be one more than resample_poly's ``ceil(n * up / down)`` outputs; that extra sample is a zero,
    as librosa pads it.
    """

    def __init__(
        self,
        read: ReadSamples,
        num_inputs: int,
        from_hz: int,
        to_hz: int,
        dtype: np.dtype | type = np.float32,
    ) -> None:
        self._read = read
        self._num_inputs = num_inputs
        self.dtype = np.dtype(dtype)
        if from_hz == to_hz:
            self._filter = None
            self.length = self._computed = num_inputs
        else:
            self._filter = polyphase_filter(from_hz, to_hz, self.dtype.str)
            self.length = resampled_length(num_inputs, from_hz, to_hz)
            exact = -(-num_inputs * self._filter.up // self._filter.down)
            self._computed = min(exact, self.length)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start..stop-1`` (``0 <= start <= stop <= length``), as a new float array."""
        out = np.zeros(stop - start, dtype=self.dtype)
        computed_stop = min(stop, self._computed)
        if computed_stop > start:
            if self._filter is None:
                out[: computed_stop - start] = self._read(start, computed_stop)
            else:
                out[: computed_stop - start] = self._filter.compute(
                    self._read, self._num_inputs, start, computed_stop
                )
        return out


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """The whole signal at ``to_hz``: librosa.resample(res_type="polyphase") without librosa."""
    samples = np.asarray(samples)
    dtype = samples.dtype if samples.dtype in (np.float32, np.float64) else np.float32

    def read(lo: int, hi: int) -> np.ndarray:
        return samples[lo:hi]

    signal = ResampledSignal(read, samples.shape[0], from_hz, to_hz, dtype)
    return signal.read(0, signal.length)
