"""The WAV reader: libsndfile's sample values for every format recorders write, clear errors for
everything else."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from acoustack.errors import InvalidArgumentError, NotFoundError
from acoustack_detector.wav import WavFile, read_wav

AUDIO = Path(__file__).resolve().parent / "data" / "audio"
EPTSER = AUDIO / "20180530_213516-EPTSER-LR_0_0.5.wav"

PCM, FLOAT, EXTENSIBLE = 1, 3, 0xFFFE


def wav_bytes(
    data: bytes,
    *,
    code: int = PCM,
    channels: int = 1,
    rate: int = 384_000,
    bits: int = 16,
    sub_format: int | None = None,
    extra_chunks: bytes = b"",
    declared_data_size: int | None = None,
) -> bytes:
    block_align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", code, channels, rate, rate * block_align, block_align, bits)
    if code == EXTENSIBLE:
        guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", sub_format) + guid_tail
    size = len(data) if declared_data_size is None else declared_data_size
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + extra_chunks
        + b"data"
        + struct.pack("<I", size)
        + data
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def write(tmp_path: Path, content: bytes, name: str = "x.wav") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_pcm16_is_divided_by_32768(tmp_path):
    values = np.array([-32768, -1, 0, 1, 12345, 32767], dtype="<i2")
    samples, rate = read_wav(write(tmp_path, wav_bytes(values.tobytes())))
    assert rate == 384_000
    assert samples.dtype == np.float32
    np.testing.assert_array_equal(samples, values.astype(np.float32) / 32768)


def test_pcm24_pcm32_u8_and_float_match_libsndfile(tmp_path):
    ints = np.array([-(2**23), -1, 0, 1, 2**23 - 1], dtype=np.int64)
    pcm24 = b"".join(int(v & 0xFFFFFF).to_bytes(3, "little") for v in ints)
    samples, _ = read_wav(write(tmp_path, wav_bytes(pcm24, bits=24)))
    np.testing.assert_array_equal(samples, (ints / 2**23).astype(np.float32))

    pcm32 = np.array([-(2**31), -1, 0, 2**31 - 1], dtype="<i4")
    samples, _ = read_wav(write(tmp_path, wav_bytes(pcm32.tobytes(), bits=32)))
    np.testing.assert_array_equal(samples, pcm32.astype(np.float32) * np.float32(2**-31))

    u8 = np.array([0, 127, 128, 255], dtype=np.uint8)
    samples, _ = read_wav(write(tmp_path, wav_bytes(u8.tobytes(), bits=8)))
    np.testing.assert_array_equal(samples, (u8.astype(np.float32) - 128) / 128)

    floats = np.array([-1.0, -0.25, 0.0, 0.5], dtype="<f4")
    samples, _ = read_wav(write(tmp_path, wav_bytes(floats.tobytes(), code=FLOAT, bits=32)))
    np.testing.assert_array_equal(samples, floats)
    doubles = floats.astype("<f8")
    samples, _ = read_wav(write(tmp_path, wav_bytes(doubles.tobytes(), code=FLOAT, bits=64)))
    np.testing.assert_array_equal(samples, floats)


def test_extensible_header_and_unknown_chunks(tmp_path):
    stereo = np.array([[1, -1], [2, -2], [3, -3]], dtype="<i2")
    guano = b"guan" + struct.pack("<I", 11) + b"GUANO|1.0|\x00" + b"\x00"  # odd size: pad byte
    content = wav_bytes(
        stereo.tobytes(), code=EXTENSIBLE, sub_format=PCM, channels=2, extra_chunks=guano
    )
    path = write(tmp_path, content)
    with WavFile.open(path) as wav:
        assert (wav.format.channels, wav.format.frames, wav.format.samplerate_hz) == (2, 3, 384_000)
        np.testing.assert_array_equal(wav.read(0, 3, channel=1), stereo[:, 1] / np.float32(32768))
        np.testing.assert_array_equal(wav.read(1, 3, channel=0), stereo[1:, 0] / np.float32(32768))


def test_ranges_read_the_same_samples_as_the_whole_file():
    whole, _ = read_wav(EPTSER)
    with WavFile.open(EPTSER) as wav:
        assert wav.format.frames == whole.size == 192_000
        parts = [
            wav.read(start, min(start + 70_001, whole.size))
            for start in range(0, whole.size, 70_001)
        ]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_data_chunk_longer_than_the_file_reads_the_whole_frames_there_are(tmp_path):
    """A recorder that lost power: the header promises more than was written."""
    values = np.arange(10, dtype="<i2")
    content = wav_bytes(values.tobytes(), declared_data_size=1_000_000)[:-1]  # half a last frame
    samples, _ = read_wav(write(tmp_path, content))
    np.testing.assert_array_equal(samples, values[:9] / np.float32(32768))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"ID3\x04\x00 an mp3 file", "not a WAV file"),
        (b"RIFX\x00\x00\x00\x00WAVE", "RIFX WAV file, which is not supported"),
        (b"RIFF\x04\x00\x00\x00WAVE", "no fmt chunk"),
        (wav_bytes(b"\x00\x00")[:36], "no data chunk"),
        (wav_bytes(b""), "has no audio samples"),
        (wav_bytes(b"\x00" * 8, code=2), "sample format 0x0002"),
        (wav_bytes(b"\x00" * 8, bits=12), "12-bit PCM samples"),
        (wav_bytes(b"\x00" * 8, channels=0), "0 channels"),
        (b"RIFF\x20\x00\x00\x00WAVEfmt \x04\x00\x00\x00\x01\x00\x01\x00", "fmt chunk is too short"),
    ],
    ids=[
        "empty",
        "mp3",
        "big-endian",
        "no-fmt",
        "no-data",
        "no-samples",
        "adpcm",
        "12-bit",
        "no-channels",
        "short-fmt",
    ],
)
def test_bad_files_are_invalid_argument_errors_naming_the_file(tmp_path, content, message):
    path = write(tmp_path, content, name="field recording.wav")
    with pytest.raises(InvalidArgumentError, match=message) as raised:
        read_wav(path)
    assert str(path) in str(raised.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(NotFoundError, match="no such file"):
        read_wav(tmp_path / "missing.wav")
    with pytest.raises(InvalidArgumentError, match="is a directory"):
        read_wav(tmp_path)


def test_channel_out_of_range(tmp_path):
    with pytest.raises(InvalidArgumentError, match=r"1 channel\(s\); channel 2 does not exist"):
        read_wav(EPTSER, channel=2)
