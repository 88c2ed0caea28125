"""Export BatDetect2 1.3.1's network to ONNX, with the parameters the numpy pipeline needs.

Runs in the throwaway build environment (build.sh: torch, batdetect2 and librosa live only there).
Writes into OUT_DIR:

  batdetect2.onnx  the network plus the steps around it that are cheaper in the graph: the bilinear
                   resize of the spectrogram to the network's height, the 9x9 max-pool that keeps
                   local maxima of the detection map, the top-k of those maxima and the gathering
                   of box sizes and class probabilities at them (so the runtime never copies the
                   full 18-channel class map out of the session).
  batdetect2.json  name, version, licence, the 17 class names, and every preprocessing and
                   post-processing constant, read from the checkpoint, batdetect2 and librosa.
  stamp.json       checksums that let `make model` skip the export when nothing changed.

`python3 export.py --check-stamp OUT_DIR` needs only the standard library: build.sh calls it before
creating the build environment at all.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

# sha256 of batdetect2/models/Net2DFast_UK_same.pth.tar inside batdetect2-1.3.1-py3-none-any.whl.
CHECKPOINT_SHA256 = "c4e399122bb8d99b0ff635b73944709fdaf4fb3f2a69e7b558e6a25ae7e26356"
CHECKPOINT_NAME = "Net2DFast_UK_same.pth.tar"
BATDETECT2_VERSION = "1.3.1"
OPSET = 17

ONNX_FILE = "batdetect2.onnx"
METADATA_FILE = "batdetect2.json"
STAMP_FILE = "stamp.json"
METADATA_FORMAT = 1

HERE = Path(__file__).resolve().parent
# The files whose change must trigger a new export.
STAMPED_INPUTS = (
    HERE / "export.py",
    HERE / "requirements.txt",
    HERE / "requirements-batdetect2.txt",
)

# batdetect2 1.3.1 hard-codes these in utils/audio_utils.py (they are not in its parameters):
# PCEN is run on the magnitude spectrogram times 2**31, with librosa's sr set to a tenth of the
# sample rate and librosa's default hop_length (not the STFT hop).
PCEN_INPUT_GAIN = 2.0**31
PCEN_SAMPLERATE_DIVISOR = 10


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def expected_stamp(out_dir: Path) -> dict:
    return {
        "checkpoint_sha256": CHECKPOINT_SHA256,
        "inputs": {path.name: sha256_of(path) for path in STAMPED_INPUTS},
        "outputs": {
            name: sha256_of(out_dir / name) if (out_dir / name).is_file() else None
            for name in (ONNX_FILE, METADATA_FILE)
        },
    }


def stamp_is_current(out_dir: Path) -> bool:
    stamp_path = out_dir / STAMP_FILE
    if not stamp_path.is_file():
        return False
    try:
        recorded = json.loads(stamp_path.read_text())
    except ValueError:
        return False
    expected = expected_stamp(out_dir)
    return None not in expected["outputs"].values() and recorded == expected


def checkpoint_path() -> Path:
    import batdetect2

    installed = getattr(batdetect2, "__version__", None)
    if installed != BATDETECT2_VERSION:
        raise SystemExit(f"batdetect2 {installed} is installed; the export needs {BATDETECT2_VERSION}")
    return Path(batdetect2.__file__).resolve().parent / "models" / CHECKPOINT_NAME


def verify_checkpoint(path: Path) -> None:
    actual = sha256_of(path)
    if actual != CHECKPOINT_SHA256:
        raise SystemExit(
            f"CHECKPOINT MISMATCH: {path}\n  sha256 {actual}\n  pinned {CHECKPOINT_SHA256}\n"
            "The wheel's weights are not the ones this project was validated against; refusing to export."
        )


def build_graph_module(network, params: dict):
    """The network wrapped with the resize before it and the peak selection after it."""
    import torch
    import torch.nn.functional as F

    input_height = int(params["spec_height"] * params["resize_factor"])
    num_classes = len(params["class_names"])
    nms_kernel = int(params["nms_kernel_size"])

    class DetectorGraph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, spectrogram: torch.Tensor, max_peaks: torch.Tensor):
            # batdetect2 resizes to (spec_height * resize_factor, int(width * resize_factor));
            # resize_factor is 0.5, so int(width * 0.5) == width // 2 for any width.
            resized = F.interpolate(
                spectrogram,
                size=(input_height, spectrogram.shape[-1] // 2),
                mode="bilinear",
                align_corners=False,
            )
            outputs = self.network(resized)
            heat = outputs.pred_det
            pooled = F.max_pool2d(heat, nms_kernel, stride=1, padding=(nms_kernel - 1) // 2)
            peaks = heat * (pooled == heat).float()
            scores, flat_index = torch.topk(peaks.reshape(-1), max_peaks)
            box_size = outputs.pred_size.reshape(2, -1).index_select(1, flat_index)
            # The last class channel is the background; batdetect2 drops it from class_probs.
            class_probs = (
                outputs.pred_class[:, :num_classes].reshape(num_classes, -1).index_select(1, flat_index)
            )
            return scores, flat_index, box_size, class_probs

    return DetectorGraph().eval()


def pcen_defaults() -> dict:
    import inspect

    import librosa

    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(librosa.pcen).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    for name, wanted in (("max_size", 1), ("b", None), ("ref", None), ("zi", None)):
        if defaults.get(name) != wanted:
            raise SystemExit(f"librosa.pcen default {name}={defaults.get(name)!r}; expected {wanted!r}")
    return defaults


def metadata(params: dict, onnx_sha256: str) -> dict:
    from batdetect2.detector import parameters as bd_parameters

    config = {**bd_parameters.DEFAULT_PROCESSING_CONFIGURATIONS, **params}
    pcen = pcen_defaults()
    target_rate = int(config["target_samp_rate"])
    return {
        "format": METADATA_FORMAT,
        "name": "BatDetect2",
        "version": BATDETECT2_VERSION,
        "checkpoint": CHECKPOINT_NAME,
        "checkpoint_sha256": CHECKPOINT_SHA256,
        "onnx_file": ONNX_FILE,
        "onnx_sha256": onnx_sha256,
        "opset": OPSET,
        "licence": "CC BY-NC 4.0 (weights): Mac Aodha et al. 2022, BatDetect2; non-commercial use only",
        "class_names": list(config["class_names"]),
        "preprocessing": {
            "target_samplerate_hz": target_rate,
            "fft_window_s": float(config["fft_win_length"]),
            "fft_overlap": float(config["fft_overlap"]),
            "min_freq_hz": float(config["min_freq"]),
            "max_freq_hz": float(config["max_freq"]),
            "spec_height": int(config["spec_height"]),
            "resize_factor": float(config["resize_factor"]),
            "spec_divide_factor": int(config["spec_divide_factor"]),
            "spec_scale": config["spec_scale"],
            "denoise_spec_avg": bool(config["denoise_spec_avg"]),
            "max_scale_spec": bool(config["max_scale_spec"]),
            "scale_raw_audio": bool(config["scale_raw_audio"]),
            "pcen": {
                "input_gain": PCEN_INPUT_GAIN,
                "samplerate_hz": target_rate / PCEN_SAMPLERATE_DIVISOR,
                "hop_length": int(pcen["hop_length"]),
                "gain": float(pcen["gain"]),
                "bias": float(pcen["bias"]),
                "power": float(pcen["power"]),
                "time_constant_s": float(pcen["time_constant"]),
                "eps": float(pcen["eps"]),
            },
        },
        "postprocessing": {
            "detection_threshold": float(config["detection_threshold"]),
            "nms_kernel_size": int(config["nms_kernel_size"]),
            "nms_top_k_per_sec": float(config["nms_top_k_per_sec"]),
            "chunk_size_s": float(config["chunk_size"]),
        },
        "graph": {
            "inputs": {
                "spectrogram": "float32 [1, 1, cropped frequency bins, frames], PCEN and denoised",
                "max_peaks": "int64 [] how many local maxima to return (batdetect2's top-k)",
            },
            "outputs": {
                "scores": "float32 [max_peaks] detection probability at each maximum, descending",
                "flat_index": "int64 [max_peaks] row * width + column in the resized map",
                "box_size": "float32 [2, max_peaks] width and height in resized-map pixels",
                "class_probs": "float32 [classes, max_peaks] softmax without the background",
            },
        },
    }


def example_spectrogram(params: dict, seconds: float = 1.0):
    """A realistic network input made by batdetect2's own preprocessing from synthetic calls."""
    import numpy as np
    from batdetect2.utils import audio_utils

    rate = int(params["target_samp_rate"])
    rng = np.random.default_rng(20220613)
    time = np.arange(int(rate * seconds)) / rate
    audio = 0.01 * rng.standard_normal(time.size)
    for start in np.arange(0.05, seconds - 0.01, 0.09):
        inside = (time >= start) & (time < start + 0.004)
        phase = 2 * np.pi * (90e3 * (time - start) - 0.5 * 8e6 * (time - start) ** 2)
        audio[inside] += 0.5 * np.sin(phase[inside]) * np.hanning(inside.sum())
    audio = audio_utils.pad_audio(
        audio.astype(np.float32),
        rate,
        params["fft_win_length"],
        params["fft_overlap"],
        params["resize_factor"],
        params["spec_divide_factor"],
    )
    spec, _ = audio_utils.generate_spectrogram(audio, rate, params)
    return spec[np.newaxis, np.newaxis].astype(np.float32)


def verify_export(graph_module, onnx_path: Path, params: dict) -> str:
    """Run torch and onnxruntime on the same input; the peaks and their values must agree."""
    import numpy as np
    import onnxruntime
    import torch

    spectrogram = example_spectrogram(params)
    max_peaks = np.array(200, dtype=np.int64)
    with torch.no_grad():
        expected = [
            t.numpy() for t in graph_module(torch.from_numpy(spectrogram), torch.tensor(200))
        ]
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    actual = session.run(None, {"spectrogram": spectrogram, "max_peaks": max_peaks})
    strong = expected[0] > params["detection_threshold"]
    if not np.array_equal(expected[1][strong], actual[1][strong]):
        raise SystemExit("EXPORT MISMATCH: onnxruntime picks different peaks than torch")
    worst = max(float(np.max(np.abs(e - a))) for e, a in zip(expected, actual, strict=True) if e.dtype.kind == "f")
    if worst > 1e-4:
        raise SystemExit(f"EXPORT MISMATCH: onnxruntime differs from torch by {worst:g}")
    return f"{int(strong.sum())} peaks above threshold identical, max abs difference {worst:.2g}"


def export(out_dir: Path) -> None:
    import torch
    from batdetect2.utils.detector_utils import load_model

    path = checkpoint_path()
    verify_checkpoint(path)
    network, params = load_model(str(path), device=torch.device("cpu"))
    if len(params["class_names"]) != 17:
        raise SystemExit(f"expected 17 classes, the checkpoint has {len(params['class_names'])}")
    graph_module = build_graph_module(network, params)

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / STAMP_FILE).unlink(missing_ok=True)
    onnx_path = out_dir / ONNX_FILE
    partial = onnx_path.with_suffix(".onnx.partial")
    example = torch.from_numpy(example_spectrogram(params))
    torch.onnx.export(
        graph_module,
        (example, torch.tensor(200)),
        str(partial),
        dynamo=False,
        opset_version=OPSET,
        input_names=["spectrogram", "max_peaks"],
        output_names=["scores", "flat_index", "box_size", "class_probs"],
        dynamic_axes={
            "spectrogram": {3: "frames"},
            "scores": {0: "peaks"},
            "flat_index": {0: "peaks"},
            "box_size": {1: "peaks"},
            "class_probs": {1: "peaks"},
        },
    )
    partial.replace(onnx_path)
    print("verify:", verify_export(graph_module, onnx_path, params))

    meta = metadata(params, sha256_of(onnx_path))
    (out_dir / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    (out_dir / STAMP_FILE).write_text(json.dumps(expected_stamp(out_dir), indent=2) + "\n")
    size_mb = onnx_path.stat().st_size / 1e6
    print(f"wrote {onnx_path} ({size_mb:.1f} MB, opset {OPSET}) and {out_dir / METADATA_FILE}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="where to write the model (build/model)")
    parser.add_argument(
        "--check-stamp",
        action="store_true",
        help="exit 0 when OUT_DIR already holds this export of the pinned checkpoint, 1 otherwise",
    )
    args = parser.parse_args(argv)
    if args.check_stamp:
        return 0 if stamp_is_current(args.out_dir) else 1
    export(args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
