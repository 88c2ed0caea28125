"""The numpy resampler against what batdetect2 calls (librosa.resample, res_type="polyphase", i.e.
scipy.signal.resample_poly): reference values written by `make reference`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from acoustack_detector.resample import PolyphaseFilter, ResampledSignal, resample, resampled_length

FIXTURE = json.loads(
    (Path(__file__).resolve().parent / "data" / "reference" / "resample.json").read_text()
)
CASES = FIXTURE["cases"]
SIGNAL = (np.random.default_rng(7).standard_normal(997) * 0.25).astype(np.float32)


@pytest.mark.parametrize("case", CASES, ids=[f"{c['from_hz'] // 1000}k" for c in CASES])
def test_matches_librosa_polyphase(case):
    out = resample(SIGNAL, case["from_hz"], case["to_hz"])
    assert out.dtype == np.float32
    assert out.size == case["length"]
    # float32 sums in another order: within a few units in the last place of values ~0.25
    np.testing.assert_allclose(out[case["indices"]], case["values"], rtol=0, atol=2e-6)


@pytest.mark.parametrize("from_hz", [192_000, 250_000, 384_000, 500_000, 441_000])
def test_any_range_equals_the_same_range_of_the_whole(from_hz):
    x = (np.random.default_rng(1).standard_normal(from_hz // 3 + 17) * 0.1).astype(np.float32)
    whole = resample(x, from_hz, 256_000)
    signal = ResampledSignal(lambda lo, hi: x[lo:hi], x.size, from_hz, 256_000)
    assert signal.length == whole.size
    for start, stop in [(0, 1), (5, 70_001), (12_345, 12_346), (whole.size - 100, whole.size)]:
        np.testing.assert_allclose(signal.read(start, stop), whole[start:stop], rtol=0, atol=1e-6)
    pieces = [signal.read(s, min(s + 32_768, whole.size)) for s in range(0, whole.size, 32_768)]
    np.testing.assert_allclose(np.concatenate(pieces), whole, rtol=0, atol=1e-6)


def test_constant_signal_keeps_its_level_away_from_the_edges():
    out = resample(np.ones(384_000, dtype=np.float64), 384_000, 256_000)
    # Unit gain on average; each phase of resample_poly's Kaiser filter is within 3e-4 of it.
    np.testing.assert_allclose(out[1_000:-1_000], 1.0, atol=3e-4)
    assert abs(out[1_000:-1_000].mean() - 1.0) < 1e-6
    assert out.dtype == np.float64


def test_lengths_follow_librosa_float_ratio():
    for n, from_hz in [(250_000, 500_000), (192_000, 384_000), (1, 192_000), (997, 441_000)]:
        assert resampled_length(n, from_hz, 256_000) == int(np.ceil(n * (256_000 / from_hz)))
    assert resample(SIGNAL, 256_000, 256_000) is not None
    np.testing.assert_array_equal(resample(SIGNAL, 256_000, 256_000), SIGNAL)


def test_pathological_rate_pairs_are_refused():
    with pytest.raises(ValueError, match="use a standard sample rate"):
        PolyphaseFilter(384_001, 256_000)


def test_a_pathological_rate_pair_is_refused_before_any_work():
    started = time.monotonic()
    with pytest.raises(ValueError, match="use a standard sample rate"):
        PolyphaseFilter(500_001, 256_000)  # took 3 s to refuse, making a 10M-tap filter first
    assert time.monotonic() - started < 0.2
