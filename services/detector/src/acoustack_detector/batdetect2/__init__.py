"""The bundled BatDetect2 1.3.1 network in ONNX Runtime, with its pre- and post-processing in numpy."""

from acoustack_detector.batdetect2.decode import BatDetection
from acoustack_detector.batdetect2.model import BatDetect2Onnx, SessionSettings

__all__ = ["BatDetect2Onnx", "BatDetection", "SessionSettings"]
