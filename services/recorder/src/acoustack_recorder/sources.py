"""Audio sources behind one interface: a microphone (PyAudio), replayed files, synthetic calls.

``record(duration_s)`` returns 16-bit PCM (``Pcm``) and takes the time a real capture takes
(synthetic audio may be made instantly, for tests and benchmarks). A source that
cannot deliver raises DeviceUnavailableError, so the recorder can mark the recording failed, back
off and report it.
"""

from __future__ import annotations

import array
import functools
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from acoustack.errors import AcoustackError, InvalidArgumentError, UnavailableError
from acoustack_recorder import first_channel
from acoustack_recorder.wavfile import Pcm

log = logging.getLogger(__name__)


class DeviceUnavailableError(UnavailableError):
    """The audio device is missing or stopped delivering."""


class UnsupportedConfigurationError(AcoustackError):
    """The device exists but cannot record as configured; the message lists what it supports."""


class AudioSource(Protocol):
    samplerate_hz: int
    channels: int

    def record(self, duration_s: float) -> Pcm: ...

    def close(self) -> None: ...


# --- synthetic ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticCall:
    """A downward FM sweep, like a Pipistrelle's: at ``start_s`` into each recording."""

    start_s: float
    duration_s: float = 0.005
    high_hz: float = 80_000.0
    low_hz: float = 45_000.0
    amplitude: float = 0.5


@dataclass
class SyntheticSource:
    samplerate_hz: int = 384_000
    channels: int = 1
    calls: Sequence[SyntheticCall] = (SyntheticCall(0.1), SyntheticCall(0.2), SyntheticCall(0.3))
    noise_amplitude: float = 0.01
    real_time: bool = False
    seed: int = 0
    _rng: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        import numpy as np  # only this test and demo source computes audio

        self._rng = np.random.default_rng(self.seed)

    def record(self, duration_s: float) -> Pcm:
        import numpy as np

        started = time.monotonic()
        frames = round(duration_s * self.samplerate_hz)
        signal = self._rng.normal(0.0, self.noise_amplitude, frames).astype(np.float32)
        for call in self.calls:
            start = int(call.start_s * self.samplerate_hz)
            length = int(call.duration_s * self.samplerate_hz)
            if start >= frames or length <= 0:
                continue
            t = np.arange(min(length, frames - start), dtype=np.float32) / self.samplerate_hz
            sweep = call.high_hz + (call.low_hz - call.high_hz) * t / call.duration_s
            phase = 2 * np.pi * np.cumsum(sweep) / self.samplerate_hz
            envelope = np.hanning(len(t)).astype(np.float32)
            signal[start : start + len(t)] += call.amplitude * envelope * np.sin(phase)
        pcm = np.clip(signal * 32767, -32768, 32767).astype(np.int16)
        if self.real_time:
            time.sleep(max(0.0, duration_s - (time.monotonic() - started)))
        return Pcm(
            np.repeat(pcm[:, None], self.channels, axis=1).astype("<i2").tobytes(), self.channels
        )

    def close(self) -> None:
        pass


# --- replay ------------------------------------------------------------------------------------


def read_first_channel(path: Path) -> tuple[bytes, int]:
    """A WAV file's first channel, as 16-bit PCM bytes, and its rate."""
    try:
        return first_channel.read_first_channel(path)
    except first_channel.UnreadableWav as exc:
        raise InvalidArgumentError(str(exc)) from None


@functools.lru_cache(maxsize=1)
def _replay_loop(files: tuple[tuple[Path, int, int, int], ...], samplerate_hz: int) -> bytes:
    """The files (path, size, mtime_ns, rate: a changed file is read again) one after the other at
    ``samplerate_hz``, made once per process: the start-up check's test recording and the first
    recording share it. Files at another rate are resampled all in one run of
    acoustack_recorder.resample, in a process of its own: numpy stays out of the recorder's
    processes, which keep running for months."""
    paths = [path for path, *_ in files]
    if all(rate == samplerate_hz for *_, rate in files):
        return b"".join(read_first_channel(path)[0] for path in paths)
    done = subprocess.run(
        [sys.executable, "-m", "acoustack_recorder.resample", str(samplerate_hz), *map(str, paths)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise InvalidArgumentError(
            f"{' '.join(map(str, paths))}: could not be resampled to {samplerate_hz} Hz for "
            f"replay: {done.stderr.decode(errors='replace').strip()[-300:]}"
        )
    return done.stdout


class ReplaySource:
    """Plays the WAV files of a folder in a loop, at real pace, as if a microphone heard them.

    The default source when a device has no microphone, so the whole system runs anywhere; the
    shared bat recordings are its default material. Files at another rate are resampled once;
    with more than one channel, each channel hears the same (the files' first channel).
    """

    def __init__(
        self,
        folder: Path,
        samplerate_hz: int = 384_000,
        *,
        channels: int = 1,
        real_time: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        files = sorted(p for p in Path(folder).glob("*.wav") if not p.name.startswith("."))
        if not files:
            raise InvalidArgumentError(
                f"{folder}: no WAV files to replay (give a folder of .wav files)"
            )
        rates = {
            p: read_first_channel(p)[1] for p in files
        }  # each one readable, or the error says which
        self.files = files
        self.samplerate_hz = samplerate_hz
        self.channels = channels
        self.real_time = real_time
        self._clock = clock
        self._sleep = sleep
        self._rates = rates
        self._loop: bytes | None = None
        self._position = 0  # in bytes

    @property
    def loop(self) -> bytes:
        """The files one after the other at the configured rate, 16-bit PCM: made at the first
        recording (so a start-up check of the folder resamples nothing), then sliced."""
        if self._loop is None:
            files = tuple(
                (p, (st := p.stat()).st_size, st.st_mtime_ns, rate)
                for p, rate in self._rates.items()
            )
            self._loop = _replay_loop(files, self.samplerate_hz)
        return self._loop

    def record(self, duration_s: float) -> Pcm:
        started = self._clock()
        loop = self.loop
        wanted = 2 * round(duration_s * self.samplerate_hz)
        pieces, filled = [], 0
        while filled < wanted:
            take = min(wanted - filled, len(loop) - self._position)
            pieces.append(loop[self._position : self._position + take])
            filled += take
            self._position = (self._position + take) % len(loop)
        mono = b"".join(pieces)
        if self.real_time:
            self._sleep(max(0.0, duration_s - (self._clock() - started)))
        if self.channels == 1:
            return Pcm(mono)
        samples = array.array("h", mono)
        out = array.array("h", bytes(len(mono) * self.channels))
        for channel in range(self.channels):  # every channel hears the same
            out[channel :: self.channels] = samples
        return Pcm(out.tobytes(), self.channels)

    def close(self) -> None:
        pass


# --- microphone (PyAudio) ----------------------------------------------------------------------

PA_INT16 = 8  # pyaudio.paInt16


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    max_input_channels: int
    default_samplerate_hz: int


def _pyaudio_module() -> Any:
    try:
        import pyaudio  # optional: only devices with a microphone need it
    except ImportError:
        raise DeviceUnavailableError(
            "PyAudio is not installed, so no microphone can be used",
            help="install the recorder with its microphone extra, or use the replay source",
        ) from None
    return pyaudio


def list_input_devices(pyaudio_module: Any | None = None) -> list[InputDevice]:
    module = pyaudio_module or _pyaudio_module()
    audio = module.PyAudio()
    try:
        devices = []
        for index in range(audio.get_device_count()):
            info = audio.get_device_info_by_index(index)
            if int(info.get("maxInputChannels", 0)) > 0:
                devices.append(
                    InputDevice(
                        index=index,
                        name=str(info["name"]),
                        max_input_channels=int(info["maxInputChannels"]),
                        default_samplerate_hz=int(info["defaultSampleRate"]),
                    )
                )
        return devices
    finally:
        audio.terminate()


COMMON_RATES = (44_100, 48_000, 96_000, 192_000, 250_000, 256_000, 384_000, 500_000)


class MicrophoneSource:
    """A PyAudio input device, chosen by name (a substring) or index.

    The configured rate and channels are checked before the first recording; when the device
    cannot do them the error lists what it can. A device that vanishes mid-recording raises
    DeviceUnavailableError; the next ``record`` looks for it again.
    """

    def __init__(
        self,
        device: str | int,
        samplerate_hz: int,
        channels: int = 1,
        chunk_frames: int = 4096,
        *,
        pyaudio_module: Any | None = None,
    ) -> None:
        if chunk_frames <= 0:
            raise InvalidArgumentError("chunk_frames: must be positive")
        self.device = device
        self.samplerate_hz = samplerate_hz
        self.channels = channels
        self.chunk_frames = chunk_frames
        self._module = pyaudio_module
        self._audio: Any | None = None
        self._index: int | None = None

    def _find(self) -> int:
        module = self._module or _pyaudio_module()
        if self._audio is None:
            self._audio = module.PyAudio()
        devices = list_input_devices(module)
        if isinstance(self.device, int):
            match = [d for d in devices if d.index == self.device]
        else:
            match = [d for d in devices if self.device.lower() in d.name.lower()]
        if not match:
            names = ", ".join(f"{d.index}: {d.name}" for d in devices) or "none"
            raise DeviceUnavailableError(
                f"no input device matches {self.device!r} (input devices: {names})",
                help="plug the microphone in, or set the device name or index (acoustack devices)",
            )
        chosen = match[0]
        if self.channels > chosen.max_input_channels:
            raise UnsupportedConfigurationError(
                f"{chosen.name} has {chosen.max_input_channels} input channel(s); "
                f"{self.channels} configured"
            )
        if not self._supports(chosen.index, self.samplerate_hz):
            rates = [r for r in COMMON_RATES if self._supports(chosen.index, r)]
            listed = ", ".join(f"{r / 1000:g} kHz" for r in rates) or "none of the usual rates"
            raise UnsupportedConfigurationError(
                f"{chosen.name} cannot record at {self.samplerate_hz / 1000:g} kHz; it supports {listed}"
            )
        return chosen.index

    def _supports(self, index: int, rate: int) -> bool:
        try:
            return bool(
                self._audio.is_format_supported(
                    rate, input_device=index, input_channels=self.channels, input_format=PA_INT16
                )
            )
        except ValueError:
            return False

    def record(self, duration_s: float) -> Pcm:
        if self._index is None:
            self._index = self._find()
        frames = round(duration_s * self.samplerate_hz)
        try:
            stream = self._audio.open(
                format=PA_INT16,
                channels=self.channels,
                rate=self.samplerate_hz,
                input=True,
                input_device_index=self._index,
                frames_per_buffer=self.chunk_frames,
            )
        except OSError as exc:
            self._forget()
            raise DeviceUnavailableError(
                f"cannot open input device {self.device!r}: {exc}"
            ) from None
        try:
            chunks, got = [], 0
            while got < frames:
                want = min(self.chunk_frames, frames - got)
                data = stream.read(want, exception_on_overflow=False)
                chunks.append(data)
                got += want
        except OSError as exc:
            self._forget()
            raise DeviceUnavailableError(
                f"input device {self.device!r} stopped delivering after "
                f"{got / self.samplerate_hz:.2f} s: {exc}"
            ) from None
        finally:
            try:
                stream.stop_stream()
                stream.close()
            except OSError:
                pass
        return Pcm(b"".join(chunks), self.channels)

    def _forget(self) -> None:
        """Look the device up again next time: it may come back under another index."""
        self._index = None
        if self._audio is not None:
            try:
                self._audio.terminate()
            finally:
                self._audio = None

    def close(self) -> None:
        self._forget()
