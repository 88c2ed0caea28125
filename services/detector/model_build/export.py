"""Export BatDetect2 1.3.1's network to ONNX, with the parameters the numpy pipeline needs.

Runs in the throwaway build environment (build.sh: torch, batdetect2 and librosa live only there).
Writes into OUT_DIR:

  The trunk, the network from its input (the spectrogram resized to 128 rows, by
  acoustack_detector/batdetect2/resize.py as torch resizes it) to the input of its last upsampling
  block, in three graphs so that what is column-local runs on tiles (batdetect2/trunk.py):
  batdetect2-encoder.onnx     the four encoder blocks, on any range of columns whose edges are on
                              the pooling stride (8): the three skip connections.
  batdetect2-bottleneck.onnx  the 1-D convolution and the self-attention over the whole width.
  batdetect2-decoder.onnx     two decoder blocks and the skip connection, on any range of
                              columns: [1, 32, 64, columns / 2]. The encoder's first block at full
                              resolution (32 x 128 x width floats) and the decoder's upsampled
                              inputs were the largest tensors left once the head was tiled.
  batdetect2-head.onnx   the rest, on any range of columns: the last decoder block at full
                         resolution, the output heads, the detection map, the 9x9 local-maximum
                         test, and the top-k of those maxima with their box sizes and class
                         probabilities. Run on overlapping tiles of the trunk's output, it gives
                         exactly the peaks it gives on the whole width (checked below), with much
                         less memory: its full-resolution tensors are the largest of the network.
  batdetect2.json        name, version, licence, the 17 class names, the tiling halo, and every
                         preprocessing and post-processing constant, read from the checkpoint,
                         batdetect2 and librosa.
  stamp.json             checksums that let `make model` skip the export when nothing changed.

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

ENCODER_FILE = "batdetect2-encoder.onnx"
HEAD_FILE = "batdetect2-head.onnx"
BOTTLENECK_FILE = "batdetect2-bottleneck.onnx"
DECODER_FILE = "batdetect2-decoder.onnx"
GRAPH_FILES = (ENCODER_FILE, BOTTLENECK_FILE, DECODER_FILE, HEAD_FILE)
# The single-graph trunk of format 2, removed from an export folder so no image carries it.
OLD_TRUNK_FILE = "batdetect2-trunk.onnx"
METADATA_FILE = "batdetect2.json"
STAMP_FILE = "stamp.json"
METADATA_FORMAT = 3
# Columns of trunk output (half resolution) a head tile needs on each side of the columns it keeps:
# the 2x upsampling reads 1 neighbour, the two 3x3 convolutions 1 full-resolution column each, the
# 9-wide local-maximum test 4: 4 half-resolution columns. Twice that, to be safe from edge effects.
HEAD_HALO_COLUMNS = 8
# Resized columns an encoder tile needs on each side: its 3x3 convolutions at full, half, quarter
# and eighth resolution reach 1 + 2 + 4 + 8 = 15 (the pools' pairs add none when a tile starts on
# a multiple of 8): 16, on the pooling stride. Exactly what is needed, not twice (unlike the head):
# every tile's column costs CPU, and verify_export checks tiles far narrower than the runtime's.
ENCODER_HALO_COLUMNS = 16
# Bottleneck columns (width / 8) a decoder tile needs on each side: through its two 3x3
# convolutions and two 2x bilinear upsamplings (clamped at a tile's edge) a kept column reads 2
# bottleneck columns beyond it.
DECODER_HALO_COLUMNS = 2
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
            for name in (*GRAPH_FILES, METADATA_FILE)
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
        raise SystemExit(
            f"batdetect2 {installed} is installed; the export needs {BATDETECT2_VERSION}"
        )
    return Path(batdetect2.__file__).resolve().parent / "models" / CHECKPOINT_NAME


def verify_checkpoint(path: Path) -> None:
    actual = sha256_of(path)
    if actual != CHECKPOINT_SHA256:
        raise SystemExit(
            f"CHECKPOINT MISMATCH: {path}\n  sha256 {actual}\n  pinned {CHECKPOINT_SHA256}\n"
            "The wheel's weights are not the ones this project was validated against; refusing to export."
        )


def build_graphs(network, params: dict):
    """The encoder, bottleneck, decoder and head modules (see the module docstring), composed from
    the network's layers as Net2DFast.forward composes them; verify_export checks they give its
    outputs.

    Two rewrites keep the arithmetic and make the head much cheaper in onnxruntime:
    - batdetect2 takes a softmax over the 18 class channels at every pixel and sums the first 17
      (the detection map). onnxruntime's Softmax on a non-last axis transposes the whole map twice
      (135 of 470 ms per 3 s chunk). Here the detection map is computed from the class logits
      relative to the background's (one exp per class, one sum), and the class softmax is taken
      only at the peaks that are returned.
    - the 9x9 max-pool that keeps local maxima is a 9x1 then a 1x9 max-pool: the same maxima with
      18 comparisons per pixel instead of 81.
    """
    import torch
    import torch.nn.functional as F

    num_classes = len(params["class_names"])
    nms_kernel = int(params["nms_kernel_size"])
    nms_pad = (nms_kernel - 1) // 2

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, resized: torch.Tensor):
            net = self.network
            skip_1 = net.conv_dn_0(resized)
            skip_2 = net.conv_dn_1(skip_1)
            skip_3 = F.relu(net.conv_dn_3_bn(net.conv_dn_3(net.conv_dn_2(skip_2))))
            return skip_1, skip_2, skip_3

    class Bottleneck(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, skip_3: torch.Tensor) -> torch.Tensor:
            net = self.network
            return net.att(F.relu(net.conv_1d_bn(net.conv_1d(skip_3))))

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(
            self,
            bottleneck: torch.Tensor,
            skip_3: torch.Tensor,
            skip_2: torch.Tensor,
            skip_1: torch.Tensor,
        ) -> torch.Tensor:
            net = self.network
            x = bottleneck.repeat([1, 1, net.bneck_height * 4, 1])
            x = net.conv_up_2(x + skip_3)
            x = net.conv_up_3(x + skip_2)
            return x + skip_1

    class Head(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(
            self,
            features: torch.Tensor,
            keep_from: torch.Tensor,
            keep_to: torch.Tensor,
            max_peaks: torch.Tensor,
        ):
            net = self.network
            x = net.conv_up_4(features)
            x = F.relu(net.conv_op_bn(net.conv_op(x)))
            logits = net.conv_classes_op(x)  # [1, classes + background, H, W]
            box_size = F.relu(net.conv_size_op(x))
            # 1 - softmax(background) = s / (1 + s), s = sum_c exp(logit_c - logit_background):
            # one exp per class and one reduction; overflow gives s = inf and 1, as it should.
            odds = torch.exp(logits[:, :num_classes] - logits[:, num_classes:]).sum(
                dim=1, keepdim=True
            )
            heat = odds / (1 + odds)
            pooled = F.max_pool2d(heat, (nms_kernel, 1), stride=1, padding=(nms_pad, 0))
            pooled = F.max_pool2d(pooled, (1, nms_kernel), stride=1, padding=(0, nms_pad))
            peaks = (heat * (pooled == heat).float())[..., keep_from:keep_to]
            scores, flat_index = torch.topk(peaks.reshape(-1), max_peaks)
            box_size = box_size[..., keep_from:keep_to].reshape(2, -1).index_select(1, flat_index)
            logits = logits[..., keep_from:keep_to]
            peak_logits = logits.reshape(num_classes + 1, -1).index_select(1, flat_index)
            # The last channel is the background; batdetect2 drops it from class_probs.
            class_probs = torch.softmax(peak_logits, dim=0)[:num_classes]
            return scores, flat_index, box_size, class_probs

    return Encoder().eval(), Bottleneck().eval(), Decoder().eval(), Head().eval()


def torch_trunk(encoder, bottleneck, decoder, resized):
    """The three trunk modules on the whole width: the trunk's output (features)."""
    skip_1, skip_2, skip_3 = encoder(resized)
    return decoder(bottleneck(skip_3), skip_3, skip_2, skip_1)


def runtime_module(name: str):
    """A numpy-only module of the detector's runtime, imported straight from the source tree (the
    build environment does not install acoustack_detector): the checks run the runtime's code."""
    import importlib

    folder = str(HERE.parent / "src" / "acoustack_detector" / "batdetect2")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)


def resized_input(params: dict, spectrogram):
    """[1, 1, bins, frames] -> [1, 1, network height, frames // 2] (the runtime's numpy resize)."""
    resize_bilinear = runtime_module("resize").resize_bilinear

    height = int(params["spec_height"] * params["resize_factor"])
    resized = resize_bilinear(spectrogram[0, 0], height, spectrogram.shape[-1] // 2)
    return resized[None, None]


def reference_outputs(network, params: dict, spectrogram, max_peaks: int):
    """What batdetect2's own code computes from the same spectrogram (for the export check)."""
    import torch
    import torch.nn.functional as F
    from batdetect2.detector import post_process

    resized = F.interpolate(
        spectrogram,
        size=(int(params["spec_height"] * params["resize_factor"]), spectrogram.shape[-1] // 2),
        mode="bilinear",
        align_corners=False,
    )
    outputs = network(resized)
    peaks = post_process.non_max_suppression(outputs.pred_det, params["nms_kernel_size"])
    scores, flat_index = torch.topk(peaks.reshape(-1), max_peaks)
    box_size = outputs.pred_size.reshape(2, -1)[:, flat_index]
    class_probs = outputs.pred_class.reshape(outputs.pred_class.shape[1], -1)[:-1, flat_index]
    return scores, flat_index, box_size, class_probs


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
            raise SystemExit(
                f"librosa.pcen default {name}={defaults.get(name)!r}; expected {wanted!r}"
            )
    return defaults


def metadata(params: dict, checksums: dict[str, str]) -> dict:
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
        "graphs": {
            "encoder": {
                "file": ENCODER_FILE,
                "sha256": checksums[ENCODER_FILE],
                "halo_columns": ENCODER_HALO_COLUMNS,
                "inputs": {
                    "resized": "float32 [1, 1, 128, columns]: a range of the resized spectrogram, "
                    "its edges on multiples of 8 columns"
                },
                "outputs": {
                    "skip_1": "float32 [1, 32, 64, columns / 2]",
                    "skip_2": "float32 [1, 64, 32, columns / 4]",
                    "skip_3": "float32 [1, 256, 16, columns / 8]",
                },
            },
            "bottleneck": {
                "file": BOTTLENECK_FILE,
                "sha256": checksums[BOTTLENECK_FILE],
                "inputs": {"skip_3": "float32 [1, 256, 16, width / 8]: the whole width's"},
                "outputs": {"bottleneck": "float32 [1, 256, 1, width / 8]"},
            },
            "decoder": {
                "file": DECODER_FILE,
                "sha256": checksums[DECODER_FILE],
                "halo_columns": DECODER_HALO_COLUMNS,
                "inputs": {
                    "bottleneck": "float32 [1, 256, 1, columns]: a range of the bottleneck's output",
                    "skip_3": "float32 [1, 256, 16, columns]: the same range",
                    "skip_2": "float32 [1, 64, 32, 2 x columns]: the same range",
                    "skip_1": "float32 [1, 32, 64, 4 x columns]: the same range",
                },
                "outputs": {"features": "float32 [1, 32, 64, 4 x columns]"},
            },
            "head": {
                "file": HEAD_FILE,
                "sha256": checksums[HEAD_FILE],
                "halo_columns": HEAD_HALO_COLUMNS,
                "inputs": {
                    "features": "float32 [1, 32, 64, columns]: a range of the trunk's output",
                    "keep_from": "int64 []: first full-resolution column to keep (2 x halo)",
                    "keep_to": "int64 []: end of the full-resolution columns to keep",
                    "max_peaks": "int64 []: how many local maxima to return (batdetect2's top-k)",
                },
                "outputs": {
                    "scores": "float32 [peaks]: detection probability, descending",
                    "flat_index": "int64 [peaks]: row * kept width + kept column",
                    "box_size": "float32 [2, peaks]: width and height in network pixels",
                    "class_probs": "float32 [classes, peaks]: softmax without the background",
                },
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


def run_head(session, features, first: int, stop: int, halo: int, max_peaks: int | None = None):
    """The head on trunk columns first..stop-1 with `halo` columns of context on each side (fewer
    at the edges); max_peaks None: every column's value, for comparing tilings."""
    import numpy as np

    lo, hi = max(first - halo, 0), min(stop + halo, features.shape[-1])
    keep_from, keep_to = 2 * (first - lo), 2 * (stop - lo)
    if max_peaks is None:
        max_peaks = features.shape[2] * 2 * (keep_to - keep_from)
    return session.run(
        None,
        {
            "features": np.ascontiguousarray(features[..., lo:hi]),
            "keep_from": np.array(keep_from, dtype=np.int64),
            "keep_to": np.array(keep_to, dtype=np.int64),
            "max_peaks": np.array(max_peaks, dtype=np.int64),
        },
    )


def peak_map(outputs, height: int, width: int):
    """Scatter a head run's (scores, flat_index) back onto its kept window."""
    import numpy as np

    scores, flat_index = outputs[0], outputs[1]
    full = np.zeros(height * width, dtype=np.float32)
    full[flat_index] = scores
    return full.reshape(height, width)


def verify_export(network, graphs, out_dir: Path, params: dict) -> str:
    """Check, on a realistic input, that:
    1. the composed graphs (torch) pick batdetect2's own peaks, with its values;
    2. onnxruntime picks the same peaks, with the same values to 1e-4;
    3. the trunk on tiles (the runtime's batdetect2/trunk.py) gives what it gives on the whole
       width, to 1e-5, and the same peaks;
    4. the head on tiles gives exactly what it gives on the whole width."""
    import numpy as np
    import onnxruntime
    import torch

    encoder, bottleneck, decoder, head = graphs
    spectrogram = example_spectrogram(params)
    resized = resized_input(params, spectrogram)
    peaks = 200
    with torch.no_grad():
        expected = reference_outputs(network, params, torch.from_numpy(spectrogram), peaks)
        features = torch_trunk(encoder, bottleneck, decoder, torch.from_numpy(resized))
        last = torch.tensor(2 * features.shape[-1])
        composed = head(features, torch.tensor(0), last, torch.tensor(peaks))
    expected = [t.numpy() for t in expected]
    strong = expected[0] > params["detection_threshold"]

    def compare(actual, what: str, tolerance: float) -> str:
        if not np.array_equal(expected[1][strong], actual[1][strong]):
            raise SystemExit(f"EXPORT MISMATCH: {what} picks other peaks than batdetect2's torch")
        report = []
        # Box sizes are in pixels (tens), probabilities below 1: the same relative tolerance.
        for index, name, scale in ((0, "scores", 1), (2, "box_size", 100), (3, "class_probs", 1)):
            difference = np.max(np.abs(expected[index][..., strong] - actual[index][..., strong]))
            if difference > tolerance * scale:
                raise SystemExit(f"EXPORT MISMATCH: {what} {name} differ by {difference:g}")
            report.append(f"{name} {difference:.1g}")
        return ", ".join(report)

    torch_report = compare([t.numpy() for t in composed], "the composed torch graph", 1e-5)

    def session(name: str):
        return onnxruntime.InferenceSession(str(out_dir / name), providers=["CPUExecutionProvider"])

    trunk = runtime_module("trunk").Trunk(
        encoder=session(ENCODER_FILE),
        bottleneck=session(BOTTLENECK_FILE),
        decoder=session(DECODER_FILE),
        encoder_halo=ENCODER_HALO_COLUMNS,
        decoder_halo=DECODER_HALO_COLUMNS,
    )
    head_session = session(HEAD_FILE)
    features = trunk.run(resized, None)
    columns = features.shape[-1]
    onnx_report = compare(
        run_head(head_session, features, 0, columns, 0, peaks), "onnxruntime", 1e-4
    )

    # Trunk tiles far narrower than the runtime's, so that most columns are near a tile's edge.
    trunk_tile = 96
    tiled_features = trunk.run(resized, trunk_tile)
    trunk_difference = float(np.max(np.abs(tiled_features - features)))
    if trunk_difference > 1e-5:
        raise SystemExit(
            f"EXPORT MISMATCH: trunk tiles differ from the whole by {trunk_difference:g}"
        )
    compare(run_head(head_session, tiled_features, 0, columns, 0, peaks), "the tiled trunk", 1e-4)
    trunk_tiles = -(-resized.shape[-1] // trunk_tile)

    height = features.shape[2] * 2
    whole_map = peak_map(run_head(head_session, features, 0, columns, 0), height, 2 * columns)
    tiles = [(start, min(start + 96, columns)) for start in range(0, columns, 96)]
    tiled_map = np.concatenate(
        [
            peak_map(run_head(head_session, features, a, b, HEAD_HALO_COLUMNS), height, 2 * (b - a))
            for a, b in tiles
        ],
        axis=1,
    )
    tile_difference = float(np.max(np.abs(tiled_map - whole_map)))
    if tile_difference > 1e-6:
        raise SystemExit(
            f"EXPORT MISMATCH: head tiles differ from the whole by {tile_difference:g}"
        )
    return (
        f"{int(strong.sum())} peaks above threshold identical to batdetect2's; torch {torch_report}; "
        f"onnxruntime {onnx_report}; {trunk_tiles} trunk tiles vs whole {trunk_difference:.1g}; "
        f"{len(tiles)} head tiles vs whole {tile_difference:.1g}"
    )


def export(out_dir: Path) -> None:
    import torch
    from batdetect2.utils.detector_utils import load_model

    path = checkpoint_path()
    verify_checkpoint(path)
    network, params = load_model(str(path), device=torch.device("cpu"))
    if len(params["class_names"]) != 17:
        raise SystemExit(f"expected 17 classes, the checkpoint has {len(params['class_names'])}")
    graphs = build_graphs(network, params)
    encoder, bottleneck, decoder, head = graphs

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / STAMP_FILE).unlink(missing_ok=True)
    (out_dir / OLD_TRUNK_FILE).unlink(missing_ok=True)
    resized = torch.from_numpy(resized_input(params, example_spectrogram(params)))
    with torch.no_grad():
        skip_1, skip_2, skip_3 = encoder(resized)
        middle = bottleneck(skip_3)
        features = decoder(middle, skip_3, skip_2, skip_1)
    exports = {
        ENCODER_FILE: (
            encoder,
            (resized,),
            ["resized"],
            ["skip_1", "skip_2", "skip_3"],
            {
                "resized": {3: "columns"},
                "skip_1": {3: "half_columns"},
                "skip_2": {3: "quarter_columns"},
                "skip_3": {3: "eighth_columns"},
            },
        ),
        BOTTLENECK_FILE: (
            bottleneck,
            (skip_3,),
            ["skip_3"],
            ["bottleneck"],
            {"skip_3": {3: "columns"}, "bottleneck": {3: "columns"}},
        ),
        DECODER_FILE: (
            decoder,
            (middle, skip_3, skip_2, skip_1),
            ["bottleneck", "skip_3", "skip_2", "skip_1"],
            ["features"],
            {
                "bottleneck": {3: "columns"},
                "skip_3": {3: "columns"},
                "skip_2": {3: "double_columns"},
                "skip_1": {3: "quadruple_columns"},
                "features": {3: "quadruple_columns"},
            },
        ),
        HEAD_FILE: (
            head,
            (features, torch.tensor(0), torch.tensor(2 * features.shape[-1]), torch.tensor(200)),
            ["features", "keep_from", "keep_to", "max_peaks"],
            ["scores", "flat_index", "box_size", "class_probs"],
            {
                "features": {3: "columns"},
                "scores": {0: "peaks"},
                "flat_index": {0: "peaks"},
                "box_size": {1: "peaks"},
                "class_probs": {1: "peaks"},
            },
        ),
    }
    for name, (module, args, inputs, outputs, dynamic) in exports.items():
        partial = out_dir / f"{name}.partial"
        torch.onnx.export(
            module,
            args,
            str(partial),
            dynamo=False,
            opset_version=OPSET,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic,
        )
        partial.replace(out_dir / name)
    print("verify:", verify_export(network, graphs, out_dir, params))

    checksums = {name: sha256_of(out_dir / name) for name in exports}
    (out_dir / METADATA_FILE).write_text(json.dumps(metadata(params, checksums), indent=2) + "\n")
    (out_dir / STAMP_FILE).write_text(json.dumps(expected_stamp(out_dir), indent=2) + "\n")
    sizes = ", ".join(f"{name} {(out_dir / name).stat().st_size / 1e6:.1f} MB" for name in exports)
    print(f"wrote {sizes} (opset {OPSET}) and {METADATA_FILE} to {out_dir}")


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
