"""What a model server's `ModelOutput` must be (proto/acoustack/v1/types.proto), checked field by field
on the proto, each problem named by the field's place in the response and the value found:
``detections[3].detection_score: 1.7 is above 1``.

The detector refuses an output with any problem (the recording is marked failed with them as the
reason); `acoustack model check` lists them. The schema would refuse the same outputs, but its
errors name neither the value nor the place in the server's terms.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator

from acoustack import limits
from acoustack.v1 import types_pb2 as pb

# A box may end a little after the recording (a model's box is a call's estimated extent); a box
# far past the end is in file time, not real time (see model.proto).
BOX_OVERHANG_S = 0.1
_KINDS = {
    pb.PREDICTION_TYPE_UNSPECIFIED,
    pb.PREDICTION_TYPE_PRESENCE,
    pb.PREDICTION_TYPE_SEQUENCE,
    pb.PREDICTION_TYPE_EVENT,
}
SHOWN_PROBLEMS = 3  # in a failure reason: the first few, then how many more


def _show(value: float) -> str:
    """A number as a person reads it: 12 significant digits (0.305, not 0.30500000000000005)."""
    return f"{value:.12g}"


def _number(value: float, path: str, low: float, high: float | None = None) -> Iterator[str]:
    if not math.isfinite(value):
        yield f"{path}: {_show(value)} is not a finite number"
    elif value < low:
        yield f"{path}: {_show(value)} is below {low:g}"
    elif high is not None and value > high:
        yield f"{path}: {_show(value)} is above {high:g}"


def _line(value: str, path: str, *, required: bool, max_chars: int) -> Iterator[str]:
    if required and not value:
        yield f"{path}: required, and empty"
    elif len(value) > max_chars:
        yield f"{path}: {len(value)} characters, more than the limit of {max_chars}"
    elif (problem := limits.line_problem(value)) is not None:
        yield f"{path}: {problem}"


def _tags(tags, path: str) -> Iterator[str]:
    for i, t in enumerate(tags):
        at = f"{path}[{i}]"
        yield from _line(t.tag.key, f"{at}.tag.key", required=True, max_chars=limits.NAME_CHARS)
        yield from _line(
            t.tag.value, f"{at}.tag.value", required=False, max_chars=limits.TEXT_CHARS
        )
        if t.HasField("confidence"):
            yield from _number(t.confidence, f"{at}.confidence", 0.0, 1.0)


def _box(box: pb.BoundingBox, path: str, duration_s: float | None) -> Iterator[str]:
    bad = False
    for name in ("start_time_s", "end_time_s", "low_freq_hz", "high_freq_hz"):
        for problem in _number(getattr(box, name), f"{path}.{name}", 0.0):
            bad = True
            yield problem
    if bad:
        return
    if box.end_time_s < box.start_time_s:
        yield f"{path}.end_time_s: {_show(box.end_time_s)} is before start_time_s {_show(box.start_time_s)}"
    if box.high_freq_hz < box.low_freq_hz:
        yield f"{path}.high_freq_hz: {_show(box.high_freq_hz)} is below low_freq_hz {_show(box.low_freq_hz)}"
    if duration_s and box.end_time_s > duration_s + BOX_OVERHANG_S:
        yield (
            f"{path}.end_time_s: {_show(box.end_time_s)} s is past the end of the recording "
            f"({duration_s:g} s of real time); boxes are in real time, not the file's time"
        )


def output_problems(output: pb.ModelOutput, duration_s: float | None = None) -> list[str]:
    """Every problem of ``output``, in field order. ``duration_s``: the recording's real duration,
    which no box may end much after (None or 0: not checked). ``id``, ``recording_id`` and
    ``created_at`` are not checked: the detector overwrites them."""
    problems: list[str] = []
    problems += _line(output.model_name, "model_name", required=False, max_chars=limits.NAME_CHARS)
    problems += _line(
        output.model_version, "model_version", required=False, max_chars=limits.NAME_CHARS
    )
    problems += _tags(output.tags, "tags")
    seen: dict[uuid.UUID, int] = {}
    for i, d in enumerate(output.detections):
        at = f"detections[{i}]"
        if d.id:
            try:
                value = uuid.UUID(d.id)
            except ValueError:
                problems.append(f"{at}.id: {d.id[:60]!r} is not a UUID (leave it empty for one)")
            else:
                if value in seen:
                    problems.append(f"{at}.id: the same as detections[{seen[value]}].id")
                seen.setdefault(value, i)
        kind = d.prediction_type
        if kind not in _KINDS:
            problems.append(f"{at}.prediction_type: {kind} is not a PredictionType")
        elif kind == pb.PREDICTION_TYPE_PRESENCE:
            if d.HasField("box"):
                problems.append(f"{at}.box: a presence detection covers the whole recording")
        elif not d.HasField("box"):
            problems.append(f"{at}.box: required for an event or sequence detection")
        else:
            problems += _box(d.box, f"{at}.box", duration_s)
        problems += _number(d.detection_score, f"{at}.detection_score", 0.0, 1.0)
        problems += _tags(d.tags, f"{at}.tags")
    return problems


def summary(problems: list[str]) -> str:
    shown = "; ".join(problems[:SHOWN_PROBLEMS])
    more = len(problems) - SHOWN_PROBLEMS
    return shown + (f"; and {more} more" if more > 0 else "")
