"""The spectrogram renderer: a synthetic tone lands in the pixel rows of its frequency, time runs
left to right, boxes are drawn where their detection is, and the PNG is one any decoder reads."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from acoustack_dashboard import spectrogram


def decode_png(data: bytes) -> np.ndarray:
    """An independent reader of 8-bit RGB PNGs (all five row filters), for checking pixels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat, header = 8, b"", None
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert (depth, colour, interlace) == (8, 2, 0)
    raw = zlib.decompress(idat)
    stride = width * 3
    rows = np.zeros((height, stride), dtype=np.int32)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        previous = rows[y - 1] if y else np.zeros(stride, np.int32)
        if kind == 0:
            rows[y] = line
        elif kind == 2:
            rows[y] = (line + previous) % 256
        else:  # the encoder uses no other filter; one appearing would be a change to review
            pytest.fail(f"row {y}: filter {kind}")
    return rows.reshape(height, width, 3).astype(np.uint8)


def brightness(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64).sum(axis=2)


def tone(freq_hz: float, rate_hz: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    return (0.5 * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


@pytest.mark.parametrize("freq_hz", [20_000, 45_000, 110_000, 170_000])
def test_a_tone_lands_in_the_rows_of_its_frequency(freq_hz):
    rate = 384_000
    png, layout = spectrogram.render(tone(freq_hz, rate, 1.0), rate)
    image = decode_png(png)
    assert image.shape == (layout.height_px, layout.width_px, 3)
    assert layout.max_freq_hz == rate / 2 and layout.duration_s == pytest.approx(1.0)
    brightest_row = int(np.argmax(brightness(image).mean(axis=1)))
    # Row 0 is the Nyquist frequency, the bottom row one bin above 0 Hz.
    expected_row = layout.height_px - freq_hz / (rate / 2) * layout.height_px
    assert abs(brightest_row - expected_row) <= 1, (brightest_row, expected_row)
    # The same row across the whole time axis, and far brighter than a row 20 kHz away.
    rows = brightness(image)
    assert (rows[brightest_row] > 2 * rows[brightest_row + 30 if brightest_row < 200 else 10]).all()


def test_time_runs_left_to_right():
    rate = 256_000
    silence = np.zeros(rate // 2, np.float32)
    burst = tone(40_000, rate, 0.5)
    png, layout = spectrogram.render(np.concatenate([silence, burst]), rate)
    loudest = brightness(decode_png(png)).max(axis=0)  # each column's brightest pixel
    half = layout.width_px // 2
    assert loudest[half + 5 :].min() > 3 * loudest[: half - 5].max()


def test_a_detection_box_is_drawn_where_it_is():
    rate = 384_000
    box = spectrogram.Box(start_time_s=0.5, end_time_s=1.0, low_freq_hz=40_000, high_freq_hz=80_000)
    png, layout = spectrogram.render(np.zeros(rate * 2, np.float32), rate, [box])
    image = decode_png(png)
    is_box = (image == spectrogram.BOX_COLOUR).all(axis=2)
    ys, xs = np.nonzero(is_box)
    assert xs.min() == pytest.approx(layout.width_px / 4, abs=1)
    assert xs.max() == pytest.approx(layout.width_px / 2, abs=1)
    assert ys.min() == pytest.approx(layout.height_px * (1 - 80 / 192), abs=1)
    assert ys.max() == pytest.approx(layout.height_px * (1 - 40 / 192), abs=1)
    # Its four edges unbroken, across the bands of rows the encoder colours one at a time.
    top, bottom, left, right = ys.min(), ys.max(), xs.min(), xs.max()
    assert is_box[top : bottom + 1, left].all() and is_box[top : bottom + 1, right].all()
    assert is_box[top, left : right + 1].all() and is_box[bottom, left : right + 1].all()


def test_the_image_stays_narrow_for_a_long_recording():
    rate = 384_000
    _, layout = spectrogram.render(np.zeros(rate * 10, np.float32), rate)
    assert layout.width_px <= spectrogram.MAX_WIDTH_PX


def test_a_recording_shorter_than_one_window_still_renders():
    png, layout = spectrogram.render(np.zeros(100, np.float32), 384_000)
    assert decode_png(png).shape[1] == layout.width_px == 1


def test_the_dashboard_starts_without_numpy():
    """numpy (about 11 MB resident) is loaded at the first spectrogram, not at start: a dashboard
    nobody opens a recording in does without it. A fresh interpreter, as the service starts."""
    import subprocess
    import sys

    script = (
        "import sys, acoustack_dashboard.__main__; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'numpy')[:3])"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert loaded == "[]", f"numpy imported at start by: {loaded}"


def write_wav(path, frames: np.ndarray, rate: int) -> None:
    """16-bit PCM, frames × channels, with a GUANO chunk before the data as devices write it."""
    pcm = frames.astype("<i2").tobytes()
    channels = frames.shape[1]
    guano = b"GUANO|Version: 1.0\nSamplerate: %d\n" % rate
    body = (
        b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2,
                                  channels * 2, 16)
        + b"guan" + struct.pack("<I", len(guano)) + guano + b"\0" * (len(guano) % 2)
        + b"data" + struct.pack("<I", len(pcm)) + pcm
    )  # fmt: skip
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_a_wav_read_block_by_block_renders_as_the_whole_array(tmp_path):
    """What the page shows: the file read a span at a time gives the image of its samples in
    memory, for each channel, and a slice is that span of the file."""
    from acoustack_dashboard import audio

    rate = 384_000
    rng = np.random.default_rng(3)
    left = tone(45_000, rate, 3.0) * 30_000
    right = rng.standard_normal(len(left)) * 2_000
    frames = np.stack([left, right], axis=1).astype("<i2")
    path = tmp_path / "two-channels.wav"
    write_wav(path, frames, rate)
    layout = audio.read_layout(path)
    box = spectrogram.Box(start_time_s=0.5, end_time_s=1.0, low_freq_hz=40_000, high_freq_hz=50_000)
    for channel in (0, 1):
        samples = audio.WavChannel(layout, channel)
        assert len(samples) == len(frames)
        assert (samples[1000:5000] == frames[1000:5000, channel]).all()
        from_file, layout_file = spectrogram.render(samples, rate, [box])
        in_memory, layout_memory = spectrogram.render(frames[:, channel].copy(), rate, [box])
        assert layout_file == layout_memory
        assert np.array_equal(decode_png(from_file), decode_png(in_memory))
    assert len(audio.WavChannel(layout)[len(frames) - 10 : len(frames) + 50]) == 10


def test_a_3_s_384_khz_render_stays_within_3_mb():
    """The render's own allocations at their highest (numpy's included, as tracemalloc sees
    them): converting the whole recording at once and copying the image at each step cost 5.3 MB
    here (9.3 MB with the file read whole), and it was the dashboard's peak."""
    import tracemalloc

    rate = 384_000
    samples = (tone(45_000, rate, 3.0) * 30_000).astype(np.int16)  # 2.3 MB, as a device records
    box = spectrogram.Box(start_time_s=0.5, end_time_s=1.0, low_freq_hz=40_000, high_freq_hz=50_000)
    spectrogram.render(samples, rate, [box])  # numpy's first-use caches (FFT plans) out of the way
    tracemalloc.start()
    try:
        png, _ = spectrogram.render(samples, rate, [box])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decode_png(png).shape == (256, 1199, 3)
    assert peak < 3 * 1024 * 1024, f"the render allocated up to {peak / 2**20:.1f} MB"
