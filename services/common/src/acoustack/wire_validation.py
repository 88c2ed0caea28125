"""Validating a ModelOutput proto without building schema objects.

A model output carries hundreds of detections with several tags each; building pydantic objects for
them costs milliseconds per output, which dominates the store's write path. This checks the same
rules as ``acoustack.schema`` directly on the message, with the same dotted-path messages, and fills
the same defaults (ids, creation time, prediction type). ``tests/test_wire_validation.py`` holds the
two to agreement on a corpus of good and bad outputs.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from acoustack.errors import InvalidArgumentError
from acoustack.schema import utc_now
from acoustack.v1 import types_pb2 as pb

_PREDICTION_TYPES = {
    pb.PREDICTION_TYPE_PRESENCE,
    pb.PREDICTION_TYPE_SEQUENCE,
    pb.PREDICTION_TYPE_EVENT,
}
_TYPE_NAMES = {pb.PREDICTION_TYPE_SEQUENCE: "sequence", pb.PREDICTION_TYPE_EVENT: "event"}


def _fail(path: str, message: str) -> None:
    raise InvalidArgumentError(f"{path}: {message}")


def _check_uuid(value: str, path: str) -> None:
    if not value:
        _fail(path, "Field required")
    try:
        uuid.UUID(value)
    except ValueError:
        _fail(path, "Input should be a valid UUID")


def _check_text(value: str, path: str, *, min_length: int, max_length: int) -> None:
    if len(value) < min_length:
        _fail(
            path,
            "Field required"
            if not value
            else f"String should have at least {min_length} character",
        )
    if len(value) > max_length:
        _fail(path, f"String should have at most {max_length} characters")


def _check_range(value: float, path: str, low: float, high: float | None) -> None:
    if not math.isfinite(value):
        _fail(path, "Input should be a finite number")
    if value < low:
        _fail(path, f"Input should be greater than or equal to {low:g}")
    if high is not None and value > high:
        _fail(path, f"Input should be less than or equal to {high:g}")


def _check_tags(tags: Any, path: str) -> None:
    for i, t in enumerate(tags):
        key = t.tag.key
        if not key:
            _fail(f"{path}.{i}.tag.key", "String should have at least 1 character")
        if len(key) > 200:
            _check_text(key, f"{path}.{i}.tag.key", min_length=1, max_length=200)
        if len(t.tag.value) > 1000:
            _check_text(t.tag.value, f"{path}.{i}.tag.value", min_length=0, max_length=1000)
        if not 0.0 <= t.confidence <= 1.0:  # NaN fails this too
            _check_range(t.confidence, f"{path}.{i}.confidence", 0, 1)


def _check_box(box: pb.BoundingBox, path: str) -> None:
    for name in ("start_time_s", "end_time_s", "low_freq_hz", "high_freq_hz"):
        _check_range(getattr(box, name), f"{path}.{name}", 0, None)
    if box.end_time_s < box.start_time_s:
        _fail(path, "Value error, end_time_s is before start_time_s")
    if box.high_freq_hz < box.low_freq_hz:
        _fail(path, "Value error, high_freq_hz is below low_freq_hz")


def check_model_output(msg: pb.ModelOutput, path: str = "model_output") -> pb.ModelOutput:
    """Check ``msg`` in place and fill its defaults; raise InvalidArgumentError naming the field."""
    if msg.id:
        _check_uuid(msg.id, f"{path}.id")
    else:
        msg.id = str(uuid.uuid4())
    _check_uuid(msg.recording_id, f"{path}.recording_id")
    _check_text(msg.model_name, f"{path}.model_name", min_length=1, max_length=200)
    _check_text(msg.model_version, f"{path}.model_version", min_length=0, max_length=200)
    if not msg.HasField("created_at"):
        msg.created_at.FromDatetime(utc_now())
    _check_tags(msg.tags, f"{path}.tags")
    seen: set[str] = set()
    for i, d in enumerate(msg.detections):
        where = f"{path}.detections.{i}"
        if d.id:
            _check_uuid(d.id, f"{where}.id")
            canonical = str(uuid.UUID(d.id))
            if canonical in seen:
                _fail(path, f"Value error, detection id {canonical} is used twice in this output")
            seen.add(canonical)
        else:
            d.id = str(uuid.uuid4())
        kind = d.prediction_type
        if kind == pb.PREDICTION_TYPE_UNSPECIFIED:
            kind = d.prediction_type = pb.PREDICTION_TYPE_EVENT
        elif kind not in _PREDICTION_TYPES:
            _fail(f"{where}.prediction_type", "Input should be 'presence', 'sequence' or 'event'")
        has_box = d.HasField("box")
        if has_box:
            _check_box(d.box, f"{where}.box")
        if not 0.0 <= d.detection_score <= 1.0:
            _check_range(d.detection_score, f"{where}.detection_score", 0, 1)
        _check_tags(d.tags, f"{where}.tags")
        if kind == pb.PREDICTION_TYPE_PRESENCE and has_box:
            _fail(
                where, "Value error, a presence detection covers the whole recording: it has no box"
            )
        if kind != pb.PREDICTION_TYPE_PRESENCE and not has_box:
            _fail(where, f"Value error, a {_TYPE_NAMES[kind]} detection needs a box")
    return msg
