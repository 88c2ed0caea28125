"""BatDetect2's network input, computed in numpy (float32 except the FFT and the PCEN smoother).

Steps, as batdetect2 1.3.1 takes them for one chunk of 256 kHz audio (utils/audio_utils.py):
  1. pad with zeros so the resized spectrogram's width is a multiple of 32 (at least 64);
  2. magnitude STFT: periodic Hann window of 512, hop 128, no centring (librosa's defaults);
  3. drop DC and keep the bins between 10 and 120 kHz, highest frequency first;
  4. PCEN (librosa.pcen on magnitude * 2**31, sr = 25.6 kHz, hop_length 512);
  5. subtract each bin's mean over time and clip at zero.
The bilinear resize to the network's 128 rows and half the width follows (resize.py).
"""

from __future__ import annotations

import numpy as np

from acoustack_detector.batdetect2.config import SpectrogramParameters

# Frames per STFT / PCEN block: bounds temporaries (a block of windowed frames is 1 MB).
_FRAMES_PER_BLOCK = 512


class SpectrogramMaker:
    def __init__(self, params: SpectrogramParameters) -> None:
        self.params = params
        n_fft = params.window_samples
        # librosa's default window, scipy.signal.get_window("hann", n_fft, fftbins=True), kept in
        # float64 as librosa does: float32 frames times it give float64 frames, whose FFT numpy
        # computes faster than a float32 one (12 vs 15 ms per 3 s chunk) and closer to librosa.
        self._window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
        # Bins kept, lowest first (batdetect2 flips to highest first after cropping; so do we).
        self._first_bin = params.lowest_bin_excluded + 1
        self._end_bin = params.highest_bin + 1
        self.height = self._end_bin - self._first_bin
        pcen = params.pcen
        self._pcen = pcen
        self._smoothing = pcen.smoothing
        # Block weights for the PCEN smoother (see _pcen_block): b * a ** -j and a ** j.
        decay = 1.0 - self._smoothing
        exponents = np.arange(_FRAMES_PER_BLOCK, dtype=np.float64)[:, np.newaxis]
        self._weighted_rise = self._smoothing * decay**-exponents
        self._fall = decay**exponents

    # --- sizes (batdetect2's pad_audio / compute_spectrogram_width arithmetic) ---

    def _resized_width(self, num_samples: int) -> int:
        p = self.params
        frames = (num_samples - p.overlap_samples) // p.hop_samples
        return int(frames * p.resize_factor)

    def _samples_for_width(self, width: int) -> int:
        p = self.params
        return int(int(width / p.resize_factor) * p.hop_samples + p.overlap_samples)

    def padded_length(self, num_samples: int) -> int:
        """The length batdetect2 pads a chunk to (never shorter than the chunk)."""
        p = self.params
        width = self._resized_width(num_samples)
        min_width = int(p.spec_divide_factor / p.resize_factor)
        if width < min_width:
            return self._samples_for_width(min_width)
        if width % p.spec_divide_factor == 0:
            return num_samples
        target = -(-width // p.spec_divide_factor) * p.spec_divide_factor
        return self._samples_for_width(target)

    def frames(self, num_samples: int) -> int:
        p = self.params
        return (num_samples - p.window_samples) // p.hop_samples + 1

    # --- the spectrogram ---

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """``audio`` (float32, already padded) -> spectrogram [1, 1, bins, frames], C order."""
        p = self.params
        n_frames = self.frames(audio.shape[0])
        windows = np.lib.stride_tricks.sliding_window_view(audio, p.window_samples)[
            :: p.hop_samples
        ]
        spec = np.empty((1, 1, self.height, n_frames), dtype=np.float32)
        rows = spec[0, 0, ::-1]  # highest frequency in the first row, as batdetect2 has it
        state = np.ones(self.height, dtype=np.float64)  # librosa's lfilter_zi for a unit step
        for start in range(0, n_frames, _FRAMES_PER_BLOCK):
            stop = min(start + _FRAMES_PER_BLOCK, n_frames)
            spectrum = np.fft.rfft(windows[start:stop] * self._window, axis=-1)
            # librosa stores the STFT as complex64, then takes its magnitude.
            magnitude = np.abs(spectrum[:, self._first_bin : self._end_bin].astype(np.complex64))
            rows[:, start:stop] = self._pcen_block(magnitude, state).T
        # Denoise: each bin minus its mean over time, clipped at zero.
        spec[0, 0] -= spec[0, 0].mean(axis=1, keepdims=True)
        np.maximum(spec, 0, out=spec)
        return spec

    def _pcen_block(self, magnitude: np.ndarray, state: np.ndarray) -> np.ndarray:
        """PCEN of [frames, bins]; ``state`` carries the smoother's last value between blocks.

        The smoother M[t] = b S[t] + (1 - b) M[t-1] is librosa's lfilter, written in closed form
        for a block of n frames so that it vectorises:
            M[t] = a**t (a M[-1] + b sum_{k<=t} a**-k S[k]),   a = 1 - b
        a**-511 is about 1e11, so it runs in float64 (librosa's own precision here).
        """
        pcen = self._pcen
        n = magnitude.shape[0]
        scaled = magnitude * np.float32(pcen.input_gain)
        smooth = np.cumsum(scaled * self._weighted_rise[:n], axis=0)
        smooth += (1.0 - self._smoothing) * state
        smooth *= self._fall[:n]
        state[:] = smooth[-1]
        # librosa: exp(-gain * (log(eps) + log1p(M / eps))), i.e. (M + eps) ** -gain
        smooth += pcen.eps
        agc = np.log(smooth, out=smooth)
        agc *= -pcen.gain
        np.exp(agc, out=agc)
        # bias**power * expm1(power * log1p(S * agc / bias)), in float32
        out = agc.astype(np.float32)
        out *= scaled
        out /= np.float32(pcen.bias)
        np.log1p(out, out=out)
        out *= np.float32(pcen.power)
        np.expm1(out, out=out)
        out *= np.float32(pcen.bias**pcen.power)
        return out
