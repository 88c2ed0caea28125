"""WAV reading in numpy, a range at a time, with the sample values libsndfile gives.

batdetect2 reads audio through librosa and soundfile (libsndfile) as float32; the conversions here
are the same (integer PCM divided by 2**(bits-1), unsigned 8-bit centred on 128, float as is), so
the detector sees the same numbers. A range is read on demand: a long recording at 500 kHz is
never held in memory whole.

Handled: RIFF/WAVE with PCM (8/16/24/32-bit) or IEEE float (32/64-bit) samples, plain or
WAVE_FORMAT_EXTENSIBLE, any channel count, unknown chunks skipped (GUANO metadata, LIST, ...). A
data chunk that claims more bytes than the file holds is read up to the last whole frame, as
libsndfile does (a recorder that lost power mid-file). Anything else is an InvalidArgumentError
that names the file.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Self

import numpy as np

from acoustack.errors import InvalidArgumentError, NotFoundError

_FORMAT_PCM = 0x0001
_FORMAT_IEEE_FLOAT = 0x0003
_FORMAT_EXTENSIBLE = 0xFFFE
_HELP = "the detector reads RIFF/WAVE files with PCM or float samples"


@dataclass(frozen=True)
class WavFormat:
    samplerate_hz: int
    channels: int
    frames: int
    sample_kind: str  # "pcm" or "float"
    bits_per_sample: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.samplerate_hz


def _invalid(path: Path, problem: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"{path}: {problem}", help=_HELP)


class WavFile:
    """An open WAV file. Use as a context manager; ``read`` returns float32 samples of one channel."""

    def __init__(self, path: Path, stream: BinaryIO, fmt: WavFormat, data_offset: int) -> None:
        self.path = path
        self.format = fmt
        self._stream = stream
        self._data_offset = data_offset
        self._frame_bytes = fmt.channels * fmt.bits_per_sample // 8

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Self:
        path = Path(path)
        try:
            stream = path.open("rb")
        except FileNotFoundError:
            raise NotFoundError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise _invalid(path, "is a directory, not a WAV file") from None
        except OSError as error:
            raise _invalid(path, f"cannot be opened: {error.strerror or error}") from None
        try:
            fmt, data_offset = _parse_header(path, stream)
        except BaseException:
            stream.close()
            raise
        return cls(path, stream, fmt, data_offset)

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def read(self, start: int, stop: int, channel: int = 0) -> np.ndarray:
        """Frames ``start..stop-1`` of ``channel`` as float32 in [-1, 1)."""
        fmt = self.format
        if not 0 <= channel < fmt.channels:
            raise InvalidArgumentError(
                f"{self.path}: has {fmt.channels} channel(s); channel {channel} does not exist"
            )
        if not 0 <= start <= stop <= fmt.frames:
            raise ValueError(f"frames {start}..{stop} outside 0..{fmt.frames}")
        self._stream.seek(self._data_offset + start * self._frame_bytes)
        raw = self._stream.read((stop - start) * self._frame_bytes)
        if len(raw) != (stop - start) * self._frame_bytes:
            raise _invalid(self.path, "ends before its data chunk does (changed while being read?)")
        return _to_float32(raw, fmt, channel)


def _to_float32(raw: bytes, fmt: WavFormat, channel: int) -> np.ndarray:
    bits = fmt.bits_per_sample
    if bits == 24:
        # Three bytes per sample: place them in the top of an int32, as libsndfile does.
        triplets = np.frombuffer(raw, dtype=np.uint8).reshape(-1, fmt.channels, 3)[:, channel]
        widened = np.zeros((triplets.shape[0], 4), dtype=np.uint8)
        widened[:, 1:] = triplets
        samples = widened.view("<i4").reshape(-1)
        return samples.astype(np.float32) * np.float32(2.0**-31)
    dtype = {
        ("pcm", 8): np.dtype("u1"),
        ("pcm", 16): np.dtype("<i2"),
        ("pcm", 32): np.dtype("<i4"),
        ("float", 32): np.dtype("<f4"),
        ("float", 64): np.dtype("<f8"),
    }[(fmt.sample_kind, bits)]
    samples = np.frombuffer(raw, dtype=dtype).reshape(-1, fmt.channels)[:, channel]
    if fmt.sample_kind == "float":
        return samples.astype(np.float32)
    if bits == 8:
        return (samples.astype(np.float32) - np.float32(128)) * np.float32(1 / 128)
    return samples.astype(np.float32) * np.float32(2.0 ** -(bits - 1))


def _parse_header(path: Path, stream: BinaryIO) -> tuple[WavFormat, int]:
    file_size = os.fstat(stream.fileno()).st_size
    if file_size == 0:
        raise _invalid(path, "is empty (0 bytes)")
    head = stream.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        if head[:4] in (b"RIFX", b"RF64") and head[8:12] == b"WAVE":
            raise _invalid(path, f"is a {head[:4].decode()} WAV file, which is not supported")
        raise _invalid(path, "is not a WAV file (no RIFF/WAVE header)")

    fmt_fields: tuple[int, int, int, int, int] | None = None
    position = 12
    while position + 8 <= file_size:
        stream.seek(position)
        chunk_id, chunk_size = struct.unpack("<4sI", stream.read(8))
        body = position + 8
        if chunk_id == b"fmt ":
            fmt_fields = _parse_fmt(path, stream.read(min(chunk_size, 40)), chunk_size)
        elif chunk_id == b"data":
            if fmt_fields is None:
                raise _invalid(path, "is corrupt: its data chunk comes before any fmt chunk")
            kind_code, channels, rate, bits, block_align = fmt_fields
            available = min(chunk_size, file_size - body)
            frames = available // block_align
            if frames == 0:
                raise _invalid(path, "has no audio samples (empty data chunk)")
            kind = "float" if kind_code == _FORMAT_IEEE_FLOAT else "pcm"
            return WavFormat(rate, channels, frames, kind, bits), body
        position = body + chunk_size + (chunk_size & 1)  # chunks are padded to even sizes
    if fmt_fields is None:
        raise _invalid(path, "is corrupt or truncated: no fmt chunk")
    raise _invalid(path, "is corrupt or truncated: no data chunk")


def _parse_fmt(path: Path, body: bytes, declared_size: int) -> tuple[int, int, int, int, int]:
    if declared_size < 16 or len(body) < 16:
        raise _invalid(path, "is corrupt: its fmt chunk is too short")
    code, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", body[:16])
    if code == _FORMAT_EXTENSIBLE:
        if len(body) < 26:
            raise _invalid(path, "is corrupt: WAVE_FORMAT_EXTENSIBLE without a sub-format")
        code = struct.unpack("<H", body[24:26])[0]  # first two bytes of the sub-format GUID
    supported = {_FORMAT_PCM: (8, 16, 24, 32), _FORMAT_IEEE_FLOAT: (32, 64)}
    if code not in supported:
        raise _invalid(
            path, f"uses WAV sample format 0x{code:04x}; only PCM and IEEE float are read"
        )
    if bits not in supported[code]:
        kind = "PCM" if code == _FORMAT_PCM else "float"
        raise _invalid(path, f"has {bits}-bit {kind} samples, which are not supported")
    if channels == 0 or rate == 0:
        raise _invalid(path, f"is corrupt: {channels} channels at {rate} Hz")
    if block_align != channels * bits // 8:
        raise _invalid(path, f"is corrupt: block align {block_align} for {channels} x {bits}-bit")
    return code, channels, rate, bits, block_align


def read_wav(path: str | os.PathLike[str], channel: int = 0) -> tuple[np.ndarray, int]:
    """One channel of a whole file as float32, and its sample rate."""
    with WavFile.open(path) as wav:
        return wav.read(0, wav.format.frames, channel), wav.format.samplerate_hz
