"""Recordings on disk, read only: a stored path is opened only once it is known to stay inside
the recordings volume; the WAV's chunks (format, data, GUANO) are read without loading the audio;
and playback at another speed is the same file with a rewritten header rate (time expansion)."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from acoustack.errors import InvalidArgumentError, NotFoundError, PermissionDeniedError, quote

if TYPE_CHECKING:
    import numpy as np

# Playback speeds offered, as slow-down factors: 1 plays in real time, 10 (the default) brings a
# 40 kHz call down to 4 kHz.
EXPANSIONS = (1, 5, 10, 20, 40)
DEFAULT_EXPANSION = 10
CHUNK_BYTES = 256 * 1024


def inside(root: Path, path: str | os.PathLike[str]) -> Path:
    """``path`` (relative to ``root``, or absolute) resolved, when it stays inside ``root``;
    PermissionDeniedError otherwise. Symbolic links are followed before the check."""
    text = os.fspath(path)
    if not text or "\x00" in text:
        raise PermissionDeniedError(f"path {quote(text)}: not a file name")
    base = root.resolve()
    resolved = (base / text).resolve()
    if not resolved.is_relative_to(base):
        raise PermissionDeniedError(
            f"path {quote(text)}: outside the recordings volume {base}; refused"
        )
    return resolved


@dataclass(frozen=True)
class WavLayout:
    path: Path
    header_rate_hz: int
    channels: int
    bits: int
    audio_format: int  # 1 PCM, 3 IEEE float
    fmt_offset: int  # where the fmt chunk's body starts
    data_offset: int
    data_bytes: int
    guano: dict[str, str]

    @property
    def frames(self) -> int:
        return self.data_bytes // (self.channels * self.bits // 8)


def read_layout(path: Path) -> WavLayout:
    """The chunks of a WAV file; InvalidArgumentError naming the file when it is not one we read."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise NotFoundError(f"{path}: the file is no longer on disk") from None
    with handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise InvalidArgumentError(f"{path.name}: not a WAV file")
        fmt = None
        data = None
        guano: dict[str, str] = {}
        while len(chunk := handle.read(8)) == 8:
            kind, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            start = handle.tell()
            if kind == b"fmt " and size >= 16:
                fmt = (start, struct.unpack("<HHIIHH", handle.read(16)))
            elif kind == b"data":
                data = (start, size)
            elif kind == b"guan":
                text = handle.read(size).decode("utf-8", errors="replace")
                guano = dict(
                    (key.strip(), value.strip())
                    for key, _, value in (line.partition(":") for line in text.splitlines())
                    if key.strip()
                )
            handle.seek(start + size + (size % 2))
    if fmt is None or data is None:
        raise InvalidArgumentError(f"{path.name}: a WAV file without a format or data chunk")
    (fmt_offset, (audio_format, channels, rate, _byte_rate, _align, bits)) = fmt
    if audio_format not in (1, 3) or bits not in (16, 32) or (audio_format == 3 and bits != 32):
        raise InvalidArgumentError(
            f"{path.name}: {bits}-bit format {audio_format}; the dashboard reads 16-bit PCM "
            "and 32-bit PCM or float"
        )
    data_bytes = min(data[1], path.stat().st_size - data[0])
    return WavLayout(
        path, rate, channels, bits, audio_format, fmt_offset, data[0], data_bytes, guano
    )


class WavChannel:
    """One channel of a WAV's audio as stored (int16, int32 or float32), read from the file only
    when sliced: the spectrogram takes one block of its windows at a time, so a whole recording
    (2.3 MB for 3 s at 384 kHz in 16 bits) is never in memory at once, nor is the file mapped.
    numpy is imported at the first slice, at the first spectrogram: the pages and playback do
    without it."""

    def __init__(self, layout: WavLayout, channel: int = 0) -> None:
        self.layout = layout
        self.channel = min(channel, layout.channels - 1)

    def __len__(self) -> int:
        return self.layout.frames

    def __getitem__(self, span: slice) -> np.ndarray:
        import numpy as np

        start, stop, step = span.indices(len(self))
        if step != 1:
            raise ValueError(f"step: a WAV channel is read in contiguous spans, got {step}")
        layout = self.layout
        dtype = np.dtype(
            {(1, 16): "<i2", (1, 32): "<i4", (3, 32): "<f4"}[(layout.audio_format, layout.bits)]
        )
        frames = np.empty((max(stop - start, 0), layout.channels), dtype=dtype)
        with open(layout.path, "rb") as handle:
            handle.seek(layout.data_offset + start * layout.channels * dtype.itemsize)
            read = handle.readinto(memoryview(frames).cast("B")) or 0
        # A file cut short since its layout was read yields what is left, never stale memory.
        return frames[: read // (layout.channels * dtype.itemsize), self.channel]


def playback_rate(capture_rate_hz: int, expansion: int) -> int:
    if expansion not in EXPANSIONS:
        raise InvalidArgumentError(
            f"expansion: {expansion} is not one of {', '.join(map(str, EXPANSIONS))}"
        )
    return max(1, round(capture_rate_hz / expansion))


@dataclass(frozen=True)
class ByteSource:
    """A file's bytes as served: a prefix made here (a rewritten header) then a span of the file,
    so any byte range is read without loading the whole."""

    path: Path
    prefix: bytes
    offset: int  # where the span starts in the file
    span: int

    @property
    def length(self) -> int:
        return len(self.prefix) + self.span

    def chunks(self, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """Bytes [start, stop) of the served file."""
        stop = self.length if stop is None else min(stop, self.length)
        if start < len(self.prefix):
            yield self.prefix[start : min(stop, len(self.prefix))]
        begin = max(start - len(self.prefix), 0)
        end = stop - len(self.prefix)
        if end <= begin:
            return
        with open(self.path, "rb") as handle:
            handle.seek(self.offset + begin)
            left = end - begin
            while left > 0 and (piece := handle.read(min(CHUNK_BYTES, left))):
                left -= len(piece)
                yield piece


def at_rate(layout: WavLayout, rate_hz: int) -> ByteSource:
    """The recording as a WAV whose header says ``rate_hz``: only the header and the audio are
    served (metadata chunks are left out)."""
    block = layout.channels * layout.bits // 8
    header = (
        b"RIFF"
        + struct.pack("<I", 36 + layout.data_bytes)
        + b"WAVE"
        + struct.pack(
            "<4sIHHIIHH",
            b"fmt ",
            16,
            layout.audio_format,
            layout.channels,
            rate_hz,
            rate_hz * block,
            block,
            layout.bits,
        )
        + b"data"
        + struct.pack("<I", layout.data_bytes)
    )
    return ByteSource(layout.path, header, layout.data_offset, layout.data_bytes)


def whole_file(path: Path) -> ByteSource:
    return ByteSource(path, b"", 0, path.stat().st_size)


def byte_range(header: str, length: int) -> tuple[int, int] | None:
    """[start, stop) of a single "bytes=a-b" Range header; None for none or one not understood
    (the whole file is sent); InvalidArgumentError when it lies past the end (416)."""
    if not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if first == "":
            start, stop = max(length - int(last), 0), length  # the last N bytes
        else:
            start = int(first)
            stop = min(int(last) + 1, length) if last else length
    except ValueError:
        return None
    if start >= length or stop <= start:
        raise InvalidArgumentError(f"Range: {header[:40]!r} lies outside the {length} bytes")
    return start, stop
