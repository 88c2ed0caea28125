"""Writing recordings: 16-bit PCM WAV with GUANO metadata, crash-safe.

A file is written under a temporary name beside its final place, fsynced, renamed (atomic on POSIX),
and the directory fsynced, so after a power cut a recording is either whole or absent — never a
half-written WAV that looks valid. GUANO (the bat-acoustics metadata standard, guano-md.org) travels
in a `guan` RIFF chunk after the audio, where every WAV reader that does not know it skips it.
"""

from __future__ import annotations

import array
import datetime as dt
import os
import struct
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from acoustack.errors import InvalidArgumentError

TEMP_SUFFIX = ".partial"


@dataclass(frozen=True)
class Pcm:
    """Audio as a WAV file holds it: 16-bit little-endian PCM, ``channels`` interleaved. What a
    source records and the writer writes; plain bytes rather than a numpy array, because numpy
    held about 13 MB in each recorder process for what is, on a device, bytes passed through."""

    data: bytes
    channels: int = 1

    def __post_init__(self) -> None:
        if self.channels < 1:
            raise InvalidArgumentError(f"channels: {self.channels}, expected at least 1")
        if len(self.data) % (2 * self.channels):
            raise InvalidArgumentError(
                f"samples: {len(self.data)} bytes is not a whole number of 16-bit frames of "
                f"{self.channels} channel(s)"
            )

    def __len__(self) -> int:
        """Frames (one sample per channel)."""
        return len(self.data) // (2 * self.channels)

    def samples(self) -> array.array:
        """The samples as integers, interleaved."""
        values = array.array("h", self.data)
        if sys.byteorder == "big":
            values.byteswap()
        return values


@dataclass(frozen=True)
class GuanoFields:
    timestamp: dt.datetime
    capture_samplerate_hz: int
    time_expansion: float
    length_s: float
    make: str
    model: str
    serial: str
    firmware: str
    deployment: str
    deployment_id: uuid.UUID
    device_id: str
    source_id: str
    recording_id: uuid.UUID
    latitude: float | None = None
    longitude: float | None = None

    def as_lines(self) -> dict[str, str]:
        fields = {
            "GUANO|Version": "1.0",
            "Timestamp": self.timestamp.isoformat(timespec="milliseconds"),
            "Samplerate": str(self.capture_samplerate_hz),
            "TE": f"{self.time_expansion:g}",
            "Length": f"{self.length_s:.6f}",
            "Make": self.make,
            "Model": self.model,
            "Serial": self.serial,
            "Firmware Version": self.firmware,
            "acoustack|Deployment": self.deployment,
            "acoustack|Deployment ID": str(self.deployment_id),
            "acoustack|Device ID": self.device_id,
            "acoustack|Source ID": self.source_id,
            "acoustack|Recording ID": str(self.recording_id),
        }
        if self.latitude is not None and self.longitude is not None:
            fields["Loc Position"] = f"{self.latitude:.6f} {self.longitude:.6f}"
        return fields


def recording_file_name(started_at: dt.datetime, source_id: str, recording_id: uuid.UUID) -> str:
    """Sorts by time; unique even for two recordings of one source in the same millisecond."""
    stamp = started_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S")
    millis = started_at.astimezone(dt.UTC).microsecond // 1000
    safe_source = "".join(c if c.isalnum() or c in "-_" else "-" for c in source_id)[:40]
    return f"{stamp}.{millis:03d}Z_{safe_source}_{recording_id.hex[:12]}.wav"


def _guano_chunk(fields: Mapping[str, str]) -> bytes:
    for key, value in fields.items():
        if "\n" in key or "\n" in value or ":" in key:
            raise InvalidArgumentError(f"GUANO field {key!r}: no newlines, no ':' in names")
    body = "\n".join(f"{k}: {v}" for k, v in fields.items()).encode("utf-8")
    pad = b"\0" if len(body) % 2 else b""
    return b"guan" + struct.pack("<I", len(body)) + body + pad


def encode_wav(
    samples: Pcm, header_samplerate_hz: int, guano: Mapping[str, str]
) -> list[bytes | memoryview]:
    """The file as pieces to write in order; the audio is not copied (a view of ``samples``)."""
    channels = samples.channels
    data = memoryview(samples.data)
    fmt = struct.pack(
        "<4sIHHIIHH", b"fmt ", 16, 1, channels, header_samplerate_hz,
        header_samplerate_hz * channels * 2, channels * 2, 16,
    )  # fmt: skip
    guan = _guano_chunk(guano)
    pad = b"\0" if len(data) % 2 else b""
    riff_size = 4 + len(fmt) + 8 + len(data) + len(pad) + len(guan)
    header = (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVE"
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
    )
    return [header, data, pad, guan]


def write_atomically(path: Path, pieces: list[bytes | memoryview]) -> Path:
    """Write ``pieces`` to ``path`` so that it is either whole or absent after a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}{TEMP_SUFFIX}")
    with open(temp, "wb") as handle:
        for piece in pieces:
            handle.write(piece)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself must reach the disk
    finally:
        os.close(directory)
    return path


def write_recording(directory: Path, samples: Pcm, guano: GuanoFields) -> Path:
    """Write a recording into ``directory``; time expansion lowers the rate in the header."""
    header_rate = round(guano.capture_samplerate_hz / guano.time_expansion)
    name = recording_file_name(guano.timestamp, guano.source_id, guano.recording_id)
    return write_atomically(directory / name, encode_wav(samples, header_rate, guano.as_lines()))


def read_guano(path: Path) -> dict[str, str]:
    """The GUANO fields of a WAV file (empty when it has none); reads chunk headers, not the audio."""
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise InvalidArgumentError(f"{path}: not a WAV file")
        while len(chunk := handle.read(8)) == 8:
            chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"guan":
                text = handle.read(size).decode("utf-8", errors="replace")
                return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
            handle.seek(size + (size % 2), os.SEEK_CUR)
    return {}


def leftover_partials(directory: Path) -> list[Path]:
    """Temporary files a crash left behind (never registered; safe to delete)."""
    return sorted(directory.glob(f".*{TEMP_SUFFIX}"))
