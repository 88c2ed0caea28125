"""The bundled BatDetect2 1.3.1 network in ONNX Runtime, with its pre- and post-processing in numpy.

The names below are imported on first use: the detector's main process reads the model's
metadata (batdetect2.config) without loading numpy and ONNX Runtime, which only its pool children
run (wiring.run_worker)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from acoustack_detector.batdetect2.decode import BatDetection
    from acoustack_detector.batdetect2.model import BatDetect2Onnx, SessionSettings

__all__ = ["BatDetect2Onnx", "BatDetection", "SessionSettings"]

_HOMES = {
    "BatDetection": "acoustack_detector.batdetect2.decode",
    "BatDetect2Onnx": "acoustack_detector.batdetect2.model",
    "SessionSettings": "acoustack_detector.batdetect2.model",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_HOMES[name]), name)
