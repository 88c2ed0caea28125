"""Fixtures for the bundled BatDetect2 network: the exported model, the reference detections that
batdetect2 1.3.1 gave on the same inputs (tests/data/reference, made by `make reference`), and the
comparison the issue asks for."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from acoustack_detector import testing
from acoustack_detector.batdetect2 import BatDetect2Onnx, BatDetection

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parents[2]
AUDIO = TESTS / "data" / "audio"
REFERENCE = TESTS / "data" / "reference"
MODEL_DIR = Path(os.environ.get("ACOUSTACK_MODEL_DIR") or REPO / "build" / "model")
RECORDINGS = {name: AUDIO / file for name, file in testing.RECORDING_FIXTURES.items()}


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The exported model ($ACOUSTACK_MODEL_DIR or build/model). Missing: the test fails."""
    if not (MODEL_DIR / "batdetect2.json").is_file():
        pytest.fail(
            f"the exported BatDetect2 model is missing ({MODEL_DIR}): run `make model` from the "
            "repository root first",
            pytrace=False,
        )
    return MODEL_DIR


@pytest.fixture(scope="session")
def bundled_model(model_dir) -> BatDetect2Onnx:
    return BatDetect2Onnx.load(model_dir)


@pytest.fixture(scope="session")
def generated_inputs(tmp_path_factory) -> dict[str, Path]:
    """The generated inputs that have batdetect2 fixtures (long file, capture rates, ...)."""
    return testing.generated_inputs(AUDIO, tmp_path_factory.mktemp("generated"))


@pytest.fixture(scope="session")
def input_path(generated_inputs) -> Callable[[str], Path]:
    def path_for(name: str) -> Path:
        return RECORDINGS.get(name) or generated_inputs[name]

    return path_for


@pytest.fixture(scope="session")
def reference(input_path) -> Callable[[str], dict]:
    """A fixture written by `make reference`, checked to come from the same input bytes."""

    def load(name: str) -> dict:
        fixture = json.loads((REFERENCE / f"{name}.json").read_text())
        path = input_path(name)
        assert testing.sha256_of(path) == fixture["input"]["sha256"], (
            f"{path.name} differs from the input reference/{name}.json was made from: "
            "the test-input generator changed; run `make reference` to remake the fixtures"
        )
        return fixture

    return load


@pytest.fixture(scope="session")
def assert_same_detections() -> Callable[[Sequence[BatDetection], dict], None]:
    """Same count and, pairwise within the issue's tolerances, the same calls."""

    def check(ours: Sequence[BatDetection], fixture: dict) -> None:
        found = [detection.as_dict() for detection in ours]
        expected = fixture["detections"]
        extra, missing = testing.unmatched(found, expected)
        assert len(found) == len(expected) and not extra and not missing, (
            f"{len(found)} detections, batdetect2 gave {len(expected)} "
            f"({fixture['input']['file']});\n  only ours: {extra[:5]}\n"
            f"  only batdetect2's: {missing[:5]}"
        )

    return check
