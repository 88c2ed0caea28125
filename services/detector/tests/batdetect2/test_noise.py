"""The noise the bundled model warms up on and the self-check runs on without a known recording:
reproducible, zero mean, the standard deviation asked for, and made without numpy.random, whose
generators hold ~6.6 MB in every detector once imported."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from acoustack_detector.batdetect2.model import faint_noise


def test_the_noise_has_the_level_asked_for_and_is_reproducible():
    noise = faint_noise(256_000, 0.01)
    assert noise.dtype == np.float32 and noise.shape == (256_000,)
    assert abs(float(noise.mean())) < 1e-4
    assert abs(float(noise.std()) - 0.01) < 2e-4
    assert np.array_equal(noise, faint_noise(256_000, 0.01))
    assert not np.array_equal(noise, faint_noise(256_000, 0.01, seed=1))
    # white: neighbouring samples are uncorrelated
    assert abs(float(np.corrcoef(noise[:-1], noise[1:])[0, 1])) < 0.01


def test_warm_up_and_self_check_leave_numpy_random_unloaded(model_dir):
    """As the detector's pool child runs them: the model loads (its warm-up inference) and the
    deployment's model check runs on synthetic noise, in a fresh interpreter."""
    script = f"""
import sys
from acoustack_detector.batdetect2.model import BatDetect2Onnx
from acoustack_detector.checks import self_check
model = BatDetect2Onnx.load({str(model_dir)!r})
[result] = self_check(lambda: model, None, {{}})
print(result.ok, result.detail)
print(sorted(m for m in sys.modules if m.startswith("numpy.random")))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    ).stdout.splitlines()
    assert out[0].startswith("True") and "synthetic noise" in out[0], out
    assert out[-1] == "[]", f"numpy.random loaded: {out[-1]}"
