"""The limits on what acoustack keeps: one definition, used where a value is checked before it is
written and where it is validated as it is read back, so nothing can be stored that cannot be read.

``acoustack.schema`` builds its field types from these; ``acoustack.wire_validation`` and the store
check requests against the same numbers and the same character rules. Each ``*_problem`` function
returns what is wrong with a value (None when nothing is), in words that never quote the whole
value: a message has to fit in a gRPC status.
"""

from __future__ import annotations

import datetime as dt
import re

# Lengths, in characters.
NAME_CHARS = 200  # deployment names, tag keys, model names and versions
TEXT_CHARS = 1000  # paths, device and source ids, tag values
REASON_CHARS = 2000  # a recording's failure reason
MESSAGE_CHARS = 1_000_000  # an outbox message's content
RESPONSE_CHARS = 100_000  # a delivery response's content

# A recording's audio.
LONGEST_RECORDING_S = 86_400.0
MAX_SAMPLERATE_HZ = 2_000_000
MAX_CHANNELS = 64
MAX_TIME_EXPANSION = 1000.0

# The times the store keeps: wide enough for any recording a device makes or imports, and far
# enough from Python's own limits (years 1..9999) that adding a day to a stored time cannot fail.
EARLIEST_TIME = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST_TIME = dt.datetime(3000, 1, 1, tzinfo=dt.UTC)  # exclusive

# What a google.protobuf.Timestamp can hold at all (0001-01-01 to 9999-12-31, in seconds).
TIMESTAMP_MIN_SECONDS = -62_135_596_800
TIMESTAMP_MAX_SECONDS = 253_402_300_799
_NANOS_PER_SECOND = 1_000_000_000

# Control characters (Unicode category Cc: C0, DEL, C1). One-line values (names, ids, paths, tags)
# refuse them all; free text (reasons, message and response content) keeps tab and line breaks.
# Postgres cannot store NUL in text at all.
_LINE_REFUSED = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TEXT_REFUSED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# The same rules as whole-value patterns, which pydantic checks in its own (compiled) code: a
# validator written in Python, called for each of a model output's thousand tag strings, cost
# half a millisecond per output. ``pattern_problem`` gives a refusal its words back.
LINE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"


def _character_problem(value: str, refused: re.Pattern[str]) -> str | None:
    found = refused.search(value)
    if found is None:
        return None
    char = found.group()
    what = "a NUL byte" if char == "\x00" else f"the control character U+{ord(char):04X}"
    return f"contains {what} (at character {found.start()})"


def line_problem(value: str) -> str | None:
    """A one-line value: no control characters at all."""
    return _character_problem(value, _LINE_REFUSED)


def text_problem(value: str) -> str | None:
    """Free text: tab, newline and carriage return are kept; other control characters are not."""
    return _character_problem(value, _TEXT_REFUSED)


def pattern_problem(pattern: str, value: object) -> str | None:
    """What is wrong with ``value`` when it failed LINE_PATTERN or TEXT_PATTERN (None for any
    other pattern)."""
    if not isinstance(value, str):
        return None
    if pattern == LINE_PATTERN:
        return line_problem(value)
    if pattern == TEXT_PATTERN:
        return text_problem(value)
    return None


def clean_text(value: str, *, one_line: bool = False) -> str:
    """``value`` with the characters the store refuses replaced by U+FFFD, for text that comes
    from outside (a receiver's answer) and must be kept rather than refused."""
    return (_LINE_REFUSED if one_line else _TEXT_REFUSED).sub("\ufffd", value)


def time_problem(value: dt.datetime) -> str | None:
    """A time the store keeps: between EARLIEST_TIME and LATEST_TIME."""
    if value.tzinfo is not None and EARLIEST_TIME <= value < LATEST_TIME:
        return None
    if value.tzinfo is None:
        return "must be time-zone aware (UTC)"
    return (
        f"{value.isoformat()} is outside the times the store keeps "
        f"({EARLIEST_TIME:%Y-%m-%d} to before {LATEST_TIME:%Y-%m-%d})"
    )


def timestamp_problem(seconds: int, nanos: int) -> str | None:
    """A google.protobuf.Timestamp that is not a time at all (past year 9999, before year 1, or
    nanos outside 0..999,999,999)."""
    if not 0 <= nanos < _NANOS_PER_SECOND:
        return f"nanos {nanos} is outside 0..{_NANOS_PER_SECOND - 1}"
    if not TIMESTAMP_MIN_SECONDS <= seconds <= TIMESTAMP_MAX_SECONDS:
        return (
            f"seconds {seconds} is outside the range of a timestamp "
            f"({TIMESTAMP_MIN_SECONDS}..{TIMESTAMP_MAX_SECONDS}, years 1 to 9999)"
        )
    return None


def stored_timestamp_problem(seconds: int, nanos: int) -> str | None:
    """A Timestamp the store may keep: a time (``timestamp_problem``) within the stored range."""
    problem = timestamp_problem(seconds, nanos)
    if problem is not None:
        return problem
    if _EARLIEST_SECONDS <= seconds < _LATEST_SECONDS:
        return None
    # The time as Timestamp.ToDatetime gives it (microseconds), so the words match the schema's.
    at = _EPOCH + dt.timedelta(seconds=seconds, microseconds=nanos // 1000)
    return time_problem(at)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EARLIEST_SECONDS = int(EARLIEST_TIME.timestamp())
_LATEST_SECONDS = int(LATEST_TIME.timestamp())
