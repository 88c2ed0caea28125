"""Loading the exported model: a missing or altered export is a clear precondition error."""

from __future__ import annotations

import json
import shutil

import pytest

from acoustack.errors import FailedPreconditionError
from acoustack_detector.batdetect2 import BatDetect2Onnx


def test_missing_model_says_to_run_make_model(tmp_path):
    with pytest.raises(FailedPreconditionError, match="no exported BatDetect2 model") as raised:
        BatDetect2Onnx.load(tmp_path)
    assert "make model" in str(raised.value)


def test_altered_graph_is_refused(model_dir, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    head = copy / "batdetect2-head.onnx"
    head.write_bytes(head.read_bytes()[:-1] + b"\x00")
    with pytest.raises(FailedPreconditionError, match="does not match the checksum"):
        BatDetect2Onnx.load(copy)


def test_description_from_another_export_format_is_refused(model_dir, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    description = json.loads((copy / "batdetect2.json").read_text())
    description["format"] = 1
    (copy / "batdetect2.json").write_text(json.dumps(description))
    with pytest.raises(FailedPreconditionError, match="format 1") as raised:
        BatDetect2Onnx.load(copy)
    assert "make model" in str(raised.value)


def test_encoder_halo_off_the_pooling_stride_is_refused(model_dir, tmp_path):
    """An encoder tile's edges must stay on the pooling stride, so its halo must too."""
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    description = json.loads((copy / "batdetect2.json").read_text())
    description["graphs"]["encoder"]["halo_columns"] = 12
    (copy / "batdetect2.json").write_text(json.dumps(description))
    with pytest.raises(FailedPreconditionError, match="graphs.encoder.halo_columns"):
        BatDetect2Onnx.load(copy)
