"""BatDetect2 1.3.1 in ONNX Runtime: audio in, the same detections as batdetect2's API out."""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
import onnxruntime
from threadpoolctl import ThreadpoolController

from acoustack import schema
from acoustack.errors import FailedPreconditionError, InvalidArgumentError
from acoustack_detector.batdetect2.config import (
    MAKE_MODEL_HELP,
    METADATA_FILE,
    GraphFile,
    ModelMetadata,
    load_metadata,
    model_folder,
)
from acoustack_detector.batdetect2.decode import (
    BatDetection,
    ChunkPeaks,
    decode_chunk,
    max_peaks,
)
from acoustack_detector.batdetect2.resize import resize_bilinear
from acoustack_detector.batdetect2.spectrogram import SpectrogramMaker
from acoustack_detector.batdetect2.trunk import POOLING_STRIDE, Tile, Trunk
from acoustack_detector.resample import ResampledSignal
from acoustack_detector.wav import WavFile


@dataclass(frozen=True)
class SessionSettings:
    """ONNX Runtime settings; the defaults were measured (see services/detector/README.md)."""

    # Threads for one inference. One uses the least CPU per second of audio (measured: 118 vs
    # 132 ms/s with two on 2 cores); run recordings side by side for throughput instead
    # (DETECTOR_CONCURRENCY). None: ONNX Runtime's default, one per physical core.
    threads: int | None = 1
    # Idle threads sleep instead of spinning: spinning burns CPU a field device needs elsewhere.
    allow_spinning: bool = False
    # The arena keeps freed blocks for the next chunk (same shapes every 3 s chunk).
    memory_arena: bool = True
    # Memory patterns pre-plan one block per input shape; with the last chunk of every file
    # being a new width they cost ~130 MB of peak memory for no measurable speed.
    memory_pattern: bool = False
    # The network's column-local parts (the encoder, the decoder and the head: everything but the
    # attention bottleneck) run on tiles of this many columns of the resized spectrogram (a
    # multiple of 8, the pooling stride; a 3 s chunk is 3008 wide): the same detections. The
    # whole trunk and head on tiles of 1024 peaked at 239 MB (the arena holds blocks of every
    # tile shape), 512 at 179-184, 256 at 161-166 (services/detector/README.md). None: the
    # whole width at once.
    tile_columns: int | None = 256


def _capture_rate(samplerate_hz: float, time_expansion: float) -> int:
    """The rate the audio was captured at; batdetect2 resamples from it. librosa's polyphase
    resampling needs a whole number; float noise (e.g. 38400 * 10.000000000000002) is forgiven."""
    if not (math.isfinite(samplerate_hz) and samplerate_hz > 0):
        raise InvalidArgumentError(f"sample rate must be a positive number, got {samplerate_hz}")
    if not (math.isfinite(time_expansion) and time_expansion > 0):
        raise InvalidArgumentError(
            f"time expansion must be a positive number, got {time_expansion}"
        )
    rate = samplerate_hz * time_expansion
    nearest = round(rate)
    if nearest <= 0 or abs(rate - nearest) > 1e-6:
        raise InvalidArgumentError(
            f"capture rate {samplerate_hz} Hz x time expansion {time_expansion} = {rate} Hz "
            "is not a whole number of hertz"
        )
    return nearest


class BatDetect2Onnx:
    """The bundled network. Load once (``load``), then call ``predict_*`` / ``detect_*``.

    ``predict_*`` return :class:`BatDetection` (batdetect2's own fields and rounding);
    ``detect_*`` return the shared schema's ``Detection`` objects. Calls may come from several
    threads at once: the sessions are thread-safe and the pipeline keeps no state between calls.
    """

    def __init__(
        self,
        metadata: ModelMetadata,
        trunk: Trunk,
        head: onnxruntime.InferenceSession,
        tile_columns: int | None,
    ) -> None:
        self.metadata = metadata
        self._trunk = trunk
        self._head = head
        self._tile_columns = tile_columns
        self._spectrogram = SpectrogramMaker(metadata.spectrogram)
        self.default_threshold = metadata.decoding.detection_threshold

    @classmethod
    def load(
        cls,
        model_dir: str | os.PathLike[str] | None = None,
        settings: SessionSettings | None = None,
    ) -> Self:
        """Load the exported model (default: $ACOUSTACK_MODEL_DIR, else build/model) and warm it up."""
        model_dir = model_folder(model_dir)
        metadata = load_metadata(model_dir)
        settings = settings or SessionSettings()
        tile = settings.tile_columns
        if tile is not None and (tile < POOLING_STRIDE or tile % POOLING_STRIDE):
            raise ValueError(
                f"tile_columns must be a positive multiple of {POOLING_STRIDE}, got {tile}"
            )
        options = _session_options(settings)
        encoder, bottleneck, decoder, head = (
            _open_session(model_dir, graph, options)
            for graph in (metadata.encoder, metadata.bottleneck, metadata.decoder, metadata.head)
        )
        trunk = Trunk(
            encoder=encoder,
            bottleneck=bottleneck,
            decoder=decoder,
            encoder_halo=metadata.encoder_halo_columns,
            decoder_halo=metadata.decoder_halo_columns,
        )
        model = cls(metadata, trunk, head, tile)
        _release_freed_memory()
        model.warm_up()
        return model

    # --- identity ---

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def version(self) -> str:
        return self.metadata.version

    @property
    def classes(self) -> tuple[str, ...]:
        return self.metadata.class_names

    @property
    def samplerate_hz(self) -> int:
        """The rate the network works at; any capture rate is resampled to it."""
        return self.metadata.spectrogram.target_samplerate_hz

    # --- detection ---

    def warm_up(self) -> None:
        """One inference on a full chunk of noise: the first run plans and allocates memory."""
        rate = self.samplerate_hz
        chunk = int(rate * self.metadata.decoding.chunk_size_s)
        self.predict_audio(faint_noise(chunk, 0.01), rate)

    def predict_file(
        self,
        path: str | os.PathLike[str],
        time_expansion: float = 1.0,
        *,
        channel: int = 0,
        threshold: float | None = None,
    ) -> list[BatDetection]:
        """Detections in a WAV file. Errors name the file (InvalidArgumentError, NotFoundError)."""
        with WavFile.open(path) as wav:
            fmt = wav.format
            if not 0 <= channel < fmt.channels:
                raise InvalidArgumentError(
                    f"{path}: has {fmt.channels} channel(s); channel {channel} does not exist"
                )

            def read(start: int, stop: int) -> np.ndarray:
                return wav.read(start, stop, channel)

            return self._predict(
                read, fmt.frames, fmt.samplerate_hz, time_expansion, threshold, source=str(path)
            )

    def predict_audio(
        self,
        samples: np.ndarray,
        samplerate_hz: int,
        time_expansion: float = 1.0,
        *,
        channel: int = 0,
        threshold: float | None = None,
    ) -> list[BatDetection]:
        """Detections in audio already in memory: [frames] or [frames, channels], float in
        [-1, 1] or integer PCM (scaled by its full range, as a WAV reader would)."""
        samples = np.asarray(samples)
        if samples.ndim not in (1, 2) or samples.shape[0] == 0:
            raise InvalidArgumentError(
                f"audio must be [frames] or [frames, channels] with frames > 0, got shape {samples.shape}"
            )
        if samples.ndim == 2:
            if not 0 <= channel < samples.shape[1]:
                raise InvalidArgumentError(
                    f"audio has {samples.shape[1]} channel(s); channel {channel} does not exist"
                )
            samples = samples[:, channel]
        elif channel != 0:
            raise InvalidArgumentError(f"audio has 1 channel; channel {channel} does not exist")
        mono = _as_float32(samples)
        if not np.isfinite(mono).all():
            raise InvalidArgumentError("audio contains NaN or infinite samples")

        def read(start: int, stop: int) -> np.ndarray:
            return mono[start:stop]

        return self._predict(
            read, mono.shape[0], samplerate_hz, time_expansion, threshold, source="audio"
        )

    def detect_file(
        self,
        path: str | os.PathLike[str],
        time_expansion: float = 1.0,
        *,
        channel: int = 0,
        threshold: float | None = None,
    ) -> list[schema.Detection]:
        """``predict_file`` as the shared schema's detections (the AudioModel protocol)."""
        found = self.predict_file(path, time_expansion, channel=channel, threshold=threshold)
        return [detection.to_schema() for detection in found]

    def detect_audio(
        self,
        samples: np.ndarray,
        samplerate_hz: int,
        time_expansion: float = 1.0,
        *,
        channel: int = 0,
        threshold: float | None = None,
    ) -> list[schema.Detection]:
        """``predict_audio`` as the shared schema's detections (the AudioModel protocol)."""
        found = self.predict_audio(
            samples, samplerate_hz, time_expansion, channel=channel, threshold=threshold
        )
        return [detection.to_schema() for detection in found]

    # --- the pipeline ---

    def _predict(
        self,
        read: Callable[[int, int], np.ndarray],
        num_samples: int,
        samplerate_hz: int,
        time_expansion: float,
        threshold: float | None,
        *,
        source: str,
    ) -> list[BatDetection]:
        if threshold is None:
            threshold = self.default_threshold
        if not 0.0 <= threshold <= 1.0:
            raise InvalidArgumentError(f"threshold must be between 0 and 1, got {threshold}")
        capture_hz = _capture_rate(samplerate_hz, time_expansion)
        try:
            signal = ResampledSignal(read, num_samples, capture_hz, self.samplerate_hz)
        except ValueError as error:
            raise InvalidArgumentError(f"{source}: {error}") from None
        detections: list[BatDetection] = []
        # numpy's BLAS (the resampler's matrix products) on one thread: its worker threads spin
        # after each small product and burned ~25% of the detector's CPU time while
        # onnxruntime, which has threads of its own, ran.
        with _blas_threads().limit(limits=1, user_api="blas"):
            for chunk_start_s, start, stop in self._chunks(signal):
                detections.extend(
                    self._predict_chunk(
                        signal, start, stop, chunk_start_s, threshold, capture_hz / 2
                    )
                )
        return detections

    def _chunks(self, signal: ResampledSignal) -> Iterator[tuple[float, int, int]]:
        """batdetect2's iterate_over_chunks: back-to-back chunks, no overlap, the last one short.
        Yields where each starts (seconds) and its sample range; the chunk's audio is read by
        whoever needs it, so that nothing else keeps it alive."""
        rate = self.samplerate_hz
        chunk_s = self.metadata.decoding.chunk_size_s
        chunk_length = int(rate * chunk_s)
        count = int(np.ceil(signal.length / rate / chunk_s))
        for index in range(count):
            start = index * chunk_length
            yield chunk_s * index, start, min(start + chunk_length, signal.length)

    def _predict_chunk(
        self,
        signal: ResampledSignal,
        start: int,
        stop: int,
        chunk_start_s: float,
        threshold: float,
        nyquist_hz: float,
    ) -> list[BatDetection]:
        # Each whole-width array is dropped as soon as the next step has read it: the audio,
        # the spectrogram and the resized spectrogram would otherwise stay resident (~10 MB
        # for a 3 s chunk) under the trunk's peak.
        # Read straight into the zero-padded buffer the spectrogram needs.
        padded = np.zeros(self._spectrogram.padded_length(stop - start), dtype=np.float32)
        padded[: stop - start] = signal.read(start, stop)
        spectrogram = self._spectrogram(padded)
        del padded
        if not spectrogram.any():
            # Digital silence (or any input whose every frequency band is constant): nothing but
            # the network's biases would answer. batdetect2 reports ~100 such "calls" per second
            # with detection probabilities ~0.1; we report none (services/detector/README.md).
            return []
        params = self.metadata.spectrogram
        resized = resize_bilinear(
            spectrogram[0, 0], params.network_height, spectrogram.shape[-1] // 2
        )
        del spectrogram
        width = resized.shape[-1]
        encoded = self._trunk.encode(resized[np.newaxis, np.newaxis], self._tile_columns)
        del resized
        k = max_peaks(width, params, self.metadata.decoding.nms_top_k_per_sec)
        windows = self._trunk.features(encoded, self.metadata.head_halo_columns)
        del encoded  # the generator holds it, and frees its pieces as it goes
        return decode_chunk(
            self._peaks(windows, width // 2, k),
            network_width=width,
            chunk_start_s=chunk_start_s,
            threshold=threshold,
            params=params,
            class_names=self.classes,
            nyquist_hz=nyquist_hz,
        )

    def _peaks(
        self, windows: Iterator[tuple[Tile, np.ndarray]], columns: int, k: int
    ) -> ChunkPeaks:
        """batdetect2's top-k local maxima of the detection map, from the head on each window of
        the trunk's output (``columns`` wide in all) as the trunk yields it.

        Each tile returns its own top k among the columns it keeps, so the chunk's top k is among
        their union: take the k best of it. Windows reach ``halo`` trunk columns beyond what
        their tile keeps.
        """
        parts: list[list[np.ndarray]] = []
        for t, features in windows:
            height = 2 * features.shape[2]
            kept_width = 2 * (t.stop - t.first)
            outputs = self._head.run(
                None,
                {
                    "features": features,
                    "keep_from": np.array(2 * (t.first - t.lo), dtype=np.int64),
                    "keep_to": np.array(2 * (t.stop - t.lo), dtype=np.int64),
                    "max_peaks": np.array(min(k, height * kept_width), dtype=np.int64),
                },
            )
            del features
            # Tile-relative row * kept_width + column -> chunk-wide row * width + column.
            row, column = np.divmod(outputs[1], kept_width)
            outputs[1] = row * (2 * columns) + column + 2 * t.first
            parts.append(outputs)
        if len(parts) == 1:
            return ChunkPeaks(*parts[0])
        scores, flat_index, box_size, class_probs = (
            np.concatenate([outputs[i] for outputs in parts], axis=-1) for i in range(4)
        )
        best = np.argsort(-scores, kind="stable")[:k]
        return ChunkPeaks(scores[best], flat_index[best], box_size[:, best], class_probs[:, best])


def _open_session(
    model_dir: Path, graph: GraphFile, options: onnxruntime.SessionOptions
) -> onnxruntime.InferenceSession:
    path = model_dir / graph.file
    try:
        model_bytes = path.read_bytes()
    except OSError as error:
        raise FailedPreconditionError(
            f"cannot read {path}: {error.strerror or error}", help=MAKE_MODEL_HELP
        ) from None
    if hashlib.sha256(model_bytes).hexdigest() != graph.sha256:
        raise FailedPreconditionError(
            f"{path} does not match the checksum in {model_dir / METADATA_FILE}",
            help=MAKE_MODEL_HELP,
        )
    return onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def _as_float32(samples: np.ndarray) -> np.ndarray:
    if samples.dtype.kind == "f":
        return samples.astype(np.float32, copy=False)
    if samples.dtype == np.uint8:
        return (samples.astype(np.float32) - np.float32(128)) * np.float32(1 / 128)
    if samples.dtype.kind == "i":
        return samples.astype(np.float32) * np.float32(2.0 ** -(8 * samples.dtype.itemsize - 1))
    raise InvalidArgumentError(f"audio samples must be float or integer PCM, got {samples.dtype}")


def _release_freed_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's malloc_trim; elsewhere nothing).
    Opening the sessions frees ~30 MB of graph-optimisation scratch that glibc would otherwise
    keep resident under every detection's peak."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return
    trim(0)


_shared_arena_registered = False
_blas_controller: ThreadpoolController | None = None


def _blas_threads() -> ThreadpoolController:
    global _blas_controller
    if _blas_controller is None:
        _blas_controller = ThreadpoolController()
    return _blas_controller


def _register_shared_arena() -> None:
    global _shared_arena_registered
    if not _shared_arena_registered:
        memory = onnxruntime.OrtMemoryInfo(
            "Cpu",
            onnxruntime.OrtAllocatorType.ORT_ARENA_ALLOCATOR,
            0,
            onnxruntime.OrtMemType.DEFAULT,
        )
        # Grow by what is asked, not to the next power of two: ~25 MB less at the peak.
        same_as_requested = 1
        onnxruntime.create_and_register_allocator(
            memory, onnxruntime.OrtArenaCfg({"arena_extend_strategy": same_as_requested})
        )
        _shared_arena_registered = True


def _session_options(settings: SessionSettings) -> onnxruntime.SessionOptions:
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1  # the graph is a chain: nothing to run side by side
    if settings.threads is not None:
        options.intra_op_num_threads = settings.threads
    options.add_session_config_entry(
        "session.intra_op.allow_spinning", "1" if settings.allow_spinning else "0"
    )
    options.enable_cpu_mem_arena = settings.memory_arena
    if settings.memory_arena:
        # One arena for every session: each graph reuses the blocks the one before freed.
        _register_shared_arena()
        options.add_session_config_entry("session.use_env_allocators", "1")
    options.enable_mem_pattern = settings.memory_pattern
    options.log_severity_level = 3  # warnings about unused initialisers etc. are not actionable
    return options


def faint_noise(samples: int, std: float, seed: int = 0) -> np.ndarray:
    """Reproducible float32 noise, uniform, zero mean, standard deviation ``std``: for a warm-up
    or a check, where any noise will do. A counter hashed by splitmix64 rather than
    numpy.random, whose generators hold about 6.6 MB resident once imported, in every detector."""
    z = np.arange(samples, dtype=np.uint64) + np.uint64(seed) * np.uint64(samples)
    z *= np.uint64(0x9E3779B97F4A7C15)  # uint64 arrays wrap on overflow, as the hash wants
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    unit = (z >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24)  # [0, 1)
    return (unit - np.float32(0.5)) * np.float32(std * math.sqrt(12.0))
