"""Validating a ModelOutput proto without building schema objects.

A model output carries hundreds of detections with several tags each; building pydantic objects for
them costs milliseconds per output, which dominates the store's write path. This checks the same
rules as ``acoustack.schema`` directly on the message, with the same dotted-path messages, and fills
the same defaults (ids, creation time, prediction type). ``tests/test_wire_validation.py`` holds the
two to agreement on a corpus of good and bad outputs.
"""

from __future__ import annotations

import math
import re
import uuid
from typing import Any

from acoustack import limits
from acoustack.errors import FieldError
from acoustack.schema import utc_now
from acoustack.v1 import types_pb2 as pb

_PREDICTION_TYPES = {
    pb.PREDICTION_TYPE_PRESENCE,
    pb.PREDICTION_TYPE_SEQUENCE,
    pb.PREDICTION_TYPE_EVENT,
}
_TYPE_NAMES = {pb.PREDICTION_TYPE_SEQUENCE: "sequence", pb.PREDICTION_TYPE_EVENT: "event"}


def _fail(path: str, message: str) -> None:
    raise FieldError(path, message)


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
        _fail(path, f"String should have at most {max_length} characters (it has {len(value)})")
    problem = limits.line_problem(value)
    if problem is not None:
        _fail(path, problem)


def _check_range(value: float, path: str, low: float, high: float | None) -> None:
    if not math.isfinite(value):
        _fail(path, "Input should be a finite number")
    if value < low:
        _fail(path, f"Input should be greater than or equal to {low:g}")
    if high is not None and value > high:
        _fail(path, f"Input should be less than or equal to {high:g}")


def _fill_unset_confidences(tags: Any) -> None:
    """An unset confidence is 1 (the schema's default); it reads as 0.0, so only those tags are
    asked whether it was set."""
    for t in tags:
        if t.confidence == 0.0 and not t.HasField("confidence"):
            t.confidence = 1.0


def _check_tags(tags: Any, path: str) -> None:
    _fill_unset_confidences(tags)
    for i, t in enumerate(tags):
        key, value = t.tag.key, t.tag.value
        if not key:
            _fail(f"{path}.{i}.tag.key", "String should have at least 1 character")
        if _bad_tag(key, value):
            _check_text(key, f"{path}.{i}.tag.key", min_length=1, max_length=limits.NAME_CHARS)
            _check_text(value, f"{path}.{i}.tag.value", min_length=0, max_length=limits.TEXT_CHARS)
        if not 0.0 <= t.confidence <= 1.0:  # NaN fails this too
            _check_range(t.confidence, f"{path}.{i}.confidence", 0, 1)


def _bad_tag(key: str, value: str) -> bool:
    return (
        not key
        or len(key) > limits.NAME_CHARS
        or len(value) > limits.TEXT_CHARS
        or limits.line_problem(key) is not None
        or limits.line_problem(value) is not None
    )


def _check_box(box: pb.BoundingBox, path: str) -> None:
    for name in ("start_time_s", "end_time_s", "low_freq_hz", "high_freq_hz"):
        _check_range(getattr(box, name), f"{path}.{name}", 0, None)
    if box.end_time_s < box.start_time_s:
        _fail(path, "Value error, end_time_s is before start_time_s")
    if box.high_freq_hz < box.low_freq_hz:
        _fail(path, "Value error, high_freq_hz is below low_freq_hz")


# The form str(uuid.uuid4()) produces; other spellings the schema accepts take the slow path.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def _all_probabilities(values: list[float]) -> bool:
    return not values or (
        min(values) >= 0.0 and max(values) <= 1.0 and not any(map(math.isnan, values))
    )


def check_model_output(
    msg: pb.ModelOutput, path: str = "model_output"
) -> dict[tuple[str, str], float]:
    """Check ``msg`` in place and fill its defaults; raise FieldError naming the field.

    Returns each distinct (key, value) tag pair of its detections with the highest confidence a
    detection gave it, which the store indexes: they are gathered in the same pass, since reading
    a field of a proto message is the costly part.
    """
    if msg.id:
        _check_uuid(msg.id, f"{path}.id")
    else:
        msg.id = str(uuid.uuid4())
    _check_uuid(msg.recording_id, f"{path}.recording_id")
    _check_text(msg.model_name, f"{path}.model_name", min_length=1, max_length=limits.NAME_CHARS)
    _check_text(
        msg.model_version, f"{path}.model_version", min_length=0, max_length=limits.NAME_CHARS
    )
    if msg.HasField("created_at"):
        created = msg.created_at
        problem = limits.stored_timestamp_problem(created.seconds, created.nanos)
        if problem is not None:
            _fail(f"{path}.created_at", problem)
    else:
        msg.created_at.FromDatetime(utc_now())
    _check_tags(msg.tags, f"{path}.tags")
    detections = msg.detections
    ids = [d.id for d in detections]
    if not all(map(_CANONICAL_UUID.match, ids)) or len(set(ids)) != len(ids):
        _check_detection_ids(detections, path)
    pairs: dict[tuple[str, str], float] = {}
    for i, d in enumerate(detections):
        kind = d.prediction_type
        if kind == pb.PREDICTION_TYPE_EVENT or kind == pb.PREDICTION_TYPE_SEQUENCE:
            if not d.HasField("box"):
                _fail(
                    f"{path}.detections.{i}",
                    f"Value error, a {_TYPE_NAMES[kind]} detection needs a box",
                )
            _check_box_fast(d.box, f"{path}.detections.{i}.box")
        else:
            _check_unusual_kind(d, f"{path}.detections.{i}")
        tags = d.tags
        if tags:
            confidences = [t.confidence for t in tags]
            if 0.0 in confidences:
                _fill_unset_confidences(tags)
                confidences = [t.confidence for t in tags]
            if not _all_probabilities(confidences):
                _check_tags(tags, f"{path}.detections.{i}.tags")
            for tag, confidence in zip(tags, confidences, strict=True):
                tag_key = tag.tag
                pair = (tag_key.key, tag_key.value)
                if confidence > pairs.get(pair, -1.0):
                    pairs[pair] = confidence
    scores = [d.detection_score for d in detections]
    if not _all_probabilities(scores):
        for i, score in enumerate(scores):
            if not 0.0 <= score <= 1.0:
                _check_range(score, f"{path}.detections.{i}.detection_score", 0, 1)
    if any(_bad_tag(key, value) for key, value in pairs):
        for i, d in enumerate(detections):  # find the first culprit, to name it
            _check_tags(d.tags, f"{path}.detections.{i}.tags")
    return pairs


def _check_detection_ids(detections: Any, path: str) -> None:
    seen: set[uuid.UUID] = set()
    for i, d in enumerate(detections):
        if not d.id:
            d.id = str(uuid.uuid4())
            continue
        _check_uuid(d.id, f"{path}.detections.{i}.id")
        value = uuid.UUID(d.id)
        if value in seen:
            _fail(path, f"Value error, detection id {value} is used twice in this output")
        seen.add(value)


def _check_box_fast(box: pb.BoundingBox, path: str) -> None:
    start, end, low, high = box.start_time_s, box.end_time_s, box.low_freq_hz, box.high_freq_hz
    # Comparisons with NaN are false and infinity fails the upper bound, so one test covers all.
    if not (0.0 <= start <= end < math.inf and 0.0 <= low <= high < math.inf):
        _check_box(box, path)


def _check_unusual_kind(d: pb.Detection, path: str) -> None:
    kind = d.prediction_type
    if kind == pb.PREDICTION_TYPE_UNSPECIFIED:
        kind = d.prediction_type = pb.PREDICTION_TYPE_EVENT
        if not d.HasField("box"):
            _fail(path, "Value error, a event detection needs a box")
        _check_box_fast(d.box, f"{path}.box")
    elif kind == pb.PREDICTION_TYPE_PRESENCE:
        if d.HasField("box"):
            _check_box(d.box, f"{path}.box")
            _fail(
                path, "Value error, a presence detection covers the whole recording: it has no box"
            )
    else:
        _fail(f"{path}.prediction_type", "Input should be 'presence', 'sequence' or 'event'")
