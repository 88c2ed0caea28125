"""A recording's spectrogram as a PNG, rendered on the device with numpy: frequency rises upwards
from 0 Hz at the bottom row to the Nyquist frequency at the top, time runs left to right, and each
detection's box is drawn in. The page puts the axes (seconds, kHz) and the labels around it from
the same ``Layout``."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from acoustack_dashboard.audio import WavChannel

    Samples = np.ndarray | WavChannel  # anything sliced into arrays, with a len()

# Frequency rows: an FFT of 512 samples gives 256 rows (750 Hz each at 384 kHz).
FFT_SIZE = 512
MAX_WIDTH_PX = 1200
DYNAMIC_RANGE_DB = 70.0
# Columns of the STFT taken at a time: numpy's rfft of 128 windows of float32 allocated 1.3 MB
# (its complex64 output is 263 kB of it); of 32, a quarter of that, in about the same time.
COLUMNS_PER_BLOCK = 32
BLOCK_FRAMES = 32 * 1024  # a block's span of samples, about (see power_db)
PNG_BAND_ROWS = 32  # rows coloured and compressed at a time: 115 kB at 1,200 columns
BOX_COLOUR = (255, 64, 64)

# A perceptually ordered dark-to-bright ramp (dark blue, purple, orange, pale yellow), its anchors
# chosen here and interpolated linearly.
_ANCHORS = (
    (8, 8, 32),
    (48, 16, 96),
    (128, 32, 112),
    (208, 72, 72),
    (248, 152, 48),
    (252, 240, 160),
)


@cache
def palette() -> np.ndarray:
    """The 256 colours, made at the first render: numpy (about 11 MB) is imported only by a
    process that draws a spectrogram, not by the dashboard at start."""
    import numpy as np

    anchors = np.array(_ANCHORS, dtype=np.float64)
    positions = np.linspace(0, len(anchors) - 1, 256)
    lower = np.floor(positions).astype(int).clip(0, len(anchors) - 2)
    fraction = (positions - lower)[:, None]
    return (anchors[lower] * (1 - fraction) + anchors[lower + 1] * fraction).astype(np.uint8)


@dataclass(frozen=True)
class Box:
    start_time_s: float
    end_time_s: float
    low_freq_hz: float
    high_freq_hz: float


@dataclass(frozen=True)
class Layout:
    """Where seconds and hertz fall on the image."""

    width_px: int
    height_px: int
    duration_s: float
    max_freq_hz: float  # the top row (the Nyquist frequency of the capture rate)

    def x_of(self, time_s: float) -> float:
        return (
            min(max(time_s / self.duration_s, 0.0), 1.0) * self.width_px if self.duration_s else 0
        )

    def y_of(self, freq_hz: float) -> float:
        """Pixel row (0 at the top) of a frequency: row r shows bin height - r of the FFT."""
        fraction = min(max(freq_hz / self.max_freq_hz, 0.0), 1.0)
        return min((1.0 - fraction) * self.height_px, self.height_px - 1.0)


def layout_for(frames: int, samplerate_hz: int) -> Layout:
    hop = hop_for(frames)
    columns = max(1, 1 + (max(frames, FFT_SIZE) - FFT_SIZE) // hop)
    return Layout(columns, FFT_SIZE // 2, frames / samplerate_hz, samplerate_hz / 2)


def hop_for(frames: int) -> int:
    """Quarter-window steps, widened so the image stays at most MAX_WIDTH_PX across."""
    return max(FFT_SIZE // 4, -(-max(frames - FFT_SIZE, 0) // (MAX_WIDTH_PX - 1)))


def power_db(samples: Samples, hop: int) -> np.ndarray:
    """Rows of frequency (highest first) × columns of time, in dB (relative: any sample type).

    ``samples`` is read one block of columns at a time, each block's span sliced from it and
    converted to float on its own, so a 3 s recording at 384 kHz (1.15 million samples, 1,200
    columns) costs its 1.2 MB of float32 dB and about 1 MB of temporaries, whether it is an array
    or a WAV read from disk (``audio.WavChannel``)."""
    import numpy as np

    frames = len(samples)
    if frames < FFT_SIZE:
        samples = np.pad(np.asarray(samples[0:frames]), (0, FFT_SIZE - frames))
        frames = FFT_SIZE
    columns = 1 + (frames - FFT_SIZE) // hop
    # Fewer columns a block when the hop is long (a long recording), so each block's span of
    # samples stays near BLOCK_FRAMES.
    per_block = max(1, min(COLUMNS_PER_BLOCK, BLOCK_FRAMES // hop))
    taper = np.hanning(FFT_SIZE).astype(np.float32)
    out = np.empty((FFT_SIZE // 2, columns), dtype=np.float32)
    for start in range(0, columns, per_block):
        count = min(per_block, columns - start)
        first = start * hop
        span = samples[first : first + (count - 1) * hop + FFT_SIZE]
        block = np.lib.stride_tricks.sliding_window_view(span, FFT_SIZE)[::hop].astype(np.float32)
        del span
        block *= taper
        spectrum = np.fft.rfft(block, axis=1)  # complex64 from float32
        del block
        power = np.abs(spectrum[:, 1:])  # the DC bin dropped: the top row is Nyquist
        del spectrum
        np.square(power, out=power)
        power += 1e-12
        np.log10(power, out=power)
        power *= 10.0
        out[:, start : start + count] = power.T[::-1]
    return out


def render(samples: Samples, samplerate_hz: int, boxes: Iterable[Box] = ()) -> tuple[bytes, Layout]:
    """The PNG of ``samples`` (mono, any numeric type) captured at ``samplerate_hz``."""
    if samplerate_hz <= 0:
        raise ValueError(f"samplerate_hz: must be positive, got {samplerate_hz}")
    import numpy as np

    layout = layout_for(len(samples), samplerate_hz)
    db = power_db(samples, hop_for(len(samples)))
    # Scaled in place, step by step as before (the same float32 operations, the same pixels):
    # each step's copy of the image would be another 1.2 MB.
    ceiling = float(db.max()) if db.size else 0.0
    np.subtract(db, ceiling - DYNAMIC_RANGE_DB, out=db)
    np.divide(db, DYNAMIC_RANGE_DB, out=db)
    np.clip(db, 0.0, 1.0, out=db)
    np.multiply(db, 255, out=db)
    levels = db.astype(np.uint8)
    del db
    edges = [_box_edges(layout, box) for box in boxes]
    return encode_png(levels, palette(), edges), layout


def _box_edges(layout: Layout, box: Box) -> tuple[int, int, int, int]:
    """The box's left and right columns, top and bottom rows, inside the image."""
    width, height = layout.width_px, layout.height_px
    left = int(min(max(layout.x_of(box.start_time_s), 0), width - 1))
    right = int(min(max(layout.x_of(box.end_time_s), left), width - 1))
    top = int(min(max(round(layout.y_of(box.high_freq_hz)), 0), height - 1))
    bottom = int(min(max(round(layout.y_of(box.low_freq_hz)), top), height - 1))
    return left, right, top, bottom


def encode_png(
    levels: np.ndarray, colours: np.ndarray, boxes: Iterable[tuple[int, int, int, int]] = ()
) -> bytes:
    """An 8-bit RGB PNG of ``levels`` (height × width, uint8) coloured by ``colours`` (256 × 3
    uint8), with each box's edges (left, right, top, bottom, as ``_box_edges`` gives them) in
    BOX_COLOUR. One IDAT, no row filters.

    Coloured and compressed a band of rows at a time, so neither the RGB image (0.9 MB at 1,200
    columns) nor a copy of the compressed data is ever whole in memory: the file is joined once
    from the compressor's pieces."""
    import numpy as np

    if levels.ndim != 2 or levels.dtype != np.uint8:
        raise ValueError(f"expected height × width uint8, got {levels.shape} {levels.dtype}")
    height, width = levels.shape
    boxes = list(boxes)
    compressor = zlib.compressobj(3)
    pieces = []
    band = np.zeros((PNG_BAND_ROWS, 1 + width * 3), dtype=np.uint8)  # each row's filter byte: 0
    for top in range(0, height, PNG_BAND_ROWS):
        rows = band[: min(PNG_BAND_ROWS, height - top)]
        pixels = np.reshape(rows[:, 1:], (len(rows), width, 3), copy=False)
        pixels[...] = colours[levels[top : top + len(rows)]]
        for left, right, upper, lower in boxes:
            _draw_edges(pixels, top, left, right, upper, lower)
        pieces.append(compressor.compress(rows))
    pieces.append(compressor.flush())
    crc = zlib.crc32(b"IDAT")
    for piece in pieces:
        crc = zlib.crc32(piece, crc)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            *_chunk(b"IHDR", header),
            struct.pack(">I", sum(map(len, pieces))),
            b"IDAT",
            *pieces,
            struct.pack(">I", crc & 0xFFFFFFFF),
            *_chunk(b"IEND", b""),
        ]
    )


def _draw_edges(
    pixels: np.ndarray, top: int, left: int, right: int, upper: int, lower: int
) -> None:
    """The part of a box's edges in a band of rows starting at image row ``top``."""
    end = top + len(pixels)
    for row in (upper, lower):
        if top <= row < end:
            pixels[row - top, left : right + 1] = BOX_COLOUR
    first, last = max(upper, top), min(lower, end - 1)
    if first <= last:
        pixels[first - top : last - top + 1, left] = BOX_COLOUR
        pixels[first - top : last - top + 1, right] = BOX_COLOUR


def _chunk(kind: bytes, body: bytes) -> list[bytes]:
    crc = zlib.crc32(body, zlib.crc32(kind)) & 0xFFFFFFFF
    return [struct.pack(">I", len(body)), kind, body, struct.pack(">I", crc)]
