"""The exported model's parameters (batdetect2.json, written by model_build/export.py)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from acoustack.errors import FailedPreconditionError
from acoustack_detector.batdetect2.trunk import POOLING_STRIDE

METADATA_FILE = "batdetect2.json"
METADATA_FORMAT = 3
MAKE_MODEL_HELP = "run `make model` from the repository root to export it"


@dataclass(frozen=True)
class PcenParameters:
    """librosa.pcen's arguments as batdetect2 calls it (on the magnitude times input_gain)."""

    input_gain: float
    samplerate_hz: float
    hop_length: int
    gain: float
    bias: float
    power: float
    time_constant_s: float
    eps: float

    @property
    def smoothing(self) -> float:
        """librosa's default IIR coefficient b: the FWHM of the smoother matches time_constant."""
        frames = self.time_constant_s * self.samplerate_hz / float(self.hop_length)
        return float((((1 + 4 * frames**2) ** 0.5) - 1) / (2 * frames**2))


@dataclass(frozen=True)
class SpectrogramParameters:
    target_samplerate_hz: int
    fft_window_s: float
    fft_overlap: float
    min_freq_hz: float
    max_freq_hz: float
    spec_height: int
    resize_factor: float
    spec_divide_factor: int
    pcen: PcenParameters

    # batdetect2 derives sample counts with int() of products; these mirror its arithmetic.
    @property
    def window_samples(self) -> int:
        return int(self.fft_window_s * self.target_samplerate_hz)

    @property
    def overlap_samples(self) -> int:
        return int(self.fft_overlap * self.window_samples)

    @property
    def hop_samples(self) -> int:
        return self.window_samples - self.overlap_samples

    @property
    def lowest_bin_excluded(self) -> int:
        """Bins 1..this are cut (DC is always dropped)."""
        return round(self.min_freq_hz * self.fft_window_s)

    @property
    def highest_bin(self) -> int:
        return round(self.max_freq_hz * self.fft_window_s)

    @property
    def network_height(self) -> int:
        return int(self.spec_height * self.resize_factor)


@dataclass(frozen=True)
class DecodingParameters:
    detection_threshold: float
    nms_top_k_per_sec: float
    chunk_size_s: float


@dataclass(frozen=True)
class GraphFile:
    file: str
    sha256: str


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    version: str
    encoder: GraphFile
    bottleneck: GraphFile
    decoder: GraphFile
    head: GraphFile
    # Columns of context a tile needs on each side, in each graph's input columns (export.py
    # ENCODER_HALO_COLUMNS, DECODER_HALO_COLUMNS, HEAD_HALO_COLUMNS).
    encoder_halo_columns: int
    decoder_halo_columns: int
    head_halo_columns: int
    checkpoint_sha256: str
    licence: str
    class_names: tuple[str, ...]
    spectrogram: SpectrogramParameters
    decoding: DecodingParameters


def _graph(raw: dict, name: str) -> GraphFile:
    return GraphFile(
        file=str(raw["graphs"][name]["file"]), sha256=str(raw["graphs"][name]["sha256"])
    )


def _halo(raw: dict, name: str, multiple: int) -> int:
    halo = raw["graphs"][name]["halo_columns"]
    if not isinstance(halo, int) or halo < 0 or halo % multiple:
        raise ValueError(
            f"graphs.{name}.halo_columns must be a non-negative multiple of {multiple}, got {halo!r}"
        )
    return halo


DEFAULT_MODEL_DIR = Path("build/model")
MODEL_DIR_ENV = "ACOUSTACK_MODEL_DIR"


def model_folder(model_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the exported model is: as given, else $ACOUSTACK_MODEL_DIR, else build/model."""
    if model_dir is None:
        model_dir = os.environ.get(MODEL_DIR_ENV) or DEFAULT_MODEL_DIR
    return Path(model_dir)


def load_metadata(model_dir: Path) -> ModelMetadata:
    path = model_dir / METADATA_FILE
    if not path.is_file():
        raise FailedPreconditionError(
            f"no exported BatDetect2 model in {model_dir}", help=MAKE_MODEL_HELP
        )
    try:
        raw = json.loads(path.read_text())
        if raw.get("format") != METADATA_FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, this detector reads {METADATA_FORMAT}")
        pre, post = raw["preprocessing"], raw["postprocessing"]
        # The numpy pipeline implements batdetect2's default preprocessing only.
        expected = {
            "spec_scale": "pcen",
            "denoise_spec_avg": True,
            "max_scale_spec": False,
            "scale_raw_audio": False,
        }
        for key, value in expected.items():
            if pre[key] != value:
                raise ValueError(f"preprocessing {key}={pre[key]!r}; only {value!r} is implemented")
        spectrogram = SpectrogramParameters(
            target_samplerate_hz=int(pre["target_samplerate_hz"]),
            fft_window_s=float(pre["fft_window_s"]),
            fft_overlap=float(pre["fft_overlap"]),
            min_freq_hz=float(pre["min_freq_hz"]),
            max_freq_hz=float(pre["max_freq_hz"]),
            spec_height=int(pre["spec_height"]),
            resize_factor=float(pre["resize_factor"]),
            spec_divide_factor=int(pre["spec_divide_factor"]),
            pcen=PcenParameters(**pre["pcen"]),
        )
        if spectrogram.highest_bin > spectrogram.window_samples // 2:
            raise ValueError("max_freq_hz is above the Nyquist frequency of the target rate")
        metadata = ModelMetadata(
            name=str(raw["name"]),
            version=str(raw["version"]),
            encoder=_graph(raw, "encoder"),
            bottleneck=_graph(raw, "bottleneck"),
            decoder=_graph(raw, "decoder"),
            head=_graph(raw, "head"),
            encoder_halo_columns=_halo(raw, "encoder", POOLING_STRIDE),
            decoder_halo_columns=_halo(raw, "decoder", 1),
            head_halo_columns=_halo(raw, "head", 1),
            checkpoint_sha256=str(raw["checkpoint_sha256"]),
            licence=str(raw["licence"]),
            class_names=tuple(str(name) for name in raw["class_names"]),
            spectrogram=spectrogram,
            decoding=DecodingParameters(
                detection_threshold=float(post["detection_threshold"]),
                nms_top_k_per_sec=float(post["nms_top_k_per_sec"]),
                chunk_size_s=float(post["chunk_size_s"]),
            ),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise FailedPreconditionError(
            f"{path} is not a usable model description: {error}", help=MAKE_MODEL_HELP
        ) from None
    return metadata
