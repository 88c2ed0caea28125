"""What a device sent, read into what the hub stores, or refused with the reason (no transport).

Devices send three kinds of message (docs/messaging.md), told apart by their shape, since they
carry no kind of their own except summaries:

- a detection message: ``model_output_id``, ``recording_id``, ``model``, ``created_at``, ``tags``
  and ``detections`` (acoustack.components.messages);
- a heartbeat: ``device_id``, ``sent_at``, ``status``, ``metrics``, and from newer messengers
  ``deployment`` (acoustack.schema.Heartbeat);
- a summary: ``"kind": "summary"`` (acoustack_messenger.summaries).

No device sends a ``schema_version`` today: none means version 1. A message naming another is
refused, so a hub older than its devices says so instead of storing what it cannot read.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from acoustack import schema

SCHEMA_VERSIONS = (1,)
HEAD_BYTES = 1024  # what is kept of a rejected payload
# What the hub reads of a heartbeat; anything else a newer device adds is kept in the payload only.
_HEARTBEAT_KEYS = ("device_id", "sent_at", "status", "metrics", "deployment")
_USER_AGENT = re.compile(r"^acoustack-messenger/(\S+)")


@dataclass(frozen=True)
class Incoming:
    """One message as a transport got it."""

    raw: bytes
    message_id: str | None
    device_id: str | None
    via: str  # "mqtt" or "http"
    received_at: dt.datetime
    topic: str | None = None
    user_agent: str | None = None  # HTTP's User-Agent; over MQTT, user property software
    size: int | None = None  # when only the head of a message too large was kept

    @property
    def size_bytes(self) -> int:
        return len(self.raw) if self.size is None else self.size


@dataclass(frozen=True)
class Accepted:
    id: uuid.UUID
    device_id: str
    kind: str
    via: str
    sent_at: dt.datetime | None
    received_at: dt.datetime
    payload: str  # JSON text, as Postgres's jsonb takes it
    detections: int = 0  # how many a detection message holds
    status: str | None = None  # a heartbeat's verdict
    metrics: str | None = None  # a heartbeat's metrics, JSON {name: value}
    software_version: str | None = None
    deployment: schema.HeartbeatDeployment | None = None  # a heartbeat's, when it has one


@dataclass(frozen=True)
class Rejected:
    message_id: str | None
    device_id: str | None
    via: str
    topic: str | None
    reason: str
    size_bytes: int
    payload_head: str
    received_at: dt.datetime


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Invalid(ValueError):
    """A field of a detection message that is not what devices send: where, and what is wrong."""


# Detection messages are most of the traffic: read by hand, about three times cheaper than a
# pydantic model of the same shape (bench/hub).
_TIME = TypeAdapter(schema.UTCDatetime)


def _uuid(value: Any, where: str) -> uuid.UUID:
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise _Invalid(f"{where}: {str(value)[:60]!r} is not a UUID")


def _probability(value: Any, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    raise _Invalid(f"{where}: {str(value)[:60]!r} is not a number from 0 to 1")


def _tags(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _Invalid(f"{where}: not a list")
    tags = []
    for i, tag in enumerate(value):
        if (
            not isinstance(tag, dict)
            or not isinstance(tag.get("key"), str)
            or not isinstance(tag.get("value"), str)
        ):
            raise _Invalid(f"{where}.{i}: not a tag with a key and a value (strings)")
        confidence = _probability(tag.get("confidence", 1.0), f"{where}.{i}.confidence")
        tags.append({"key": tag["key"], "value": tag["value"], "confidence": confidence})
    return tags


class _Summary(_Loose):
    kind: str
    device_id: str | None = None
    window: dict[str, schema.UTCDatetime]


def _reject(incoming: Incoming, reason: str) -> Rejected:
    return Rejected(
        message_id=(incoming.message_id or None) and incoming.message_id[:200],
        device_id=(incoming.device_id or None) and incoming.device_id[:200],
        via=incoming.via,
        topic=incoming.topic,
        reason=reason,
        size_bytes=incoming.size_bytes,
        payload_head=incoming.raw[:HEAD_BYTES].decode("utf-8", "replace").replace("\0", "\ufffd"),
        received_at=incoming.received_at,
    )


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in exc.errors()[:5]
    )


def _software_version(incoming: Incoming, body: dict[str, Any]) -> str | None:
    given = body.get("software_version")
    if isinstance(given, str) and given:
        return given[:100]
    match = _USER_AGENT.match(incoming.user_agent or "")
    return f"acoustack {match[1]}"[:100] if match else None


def read(incoming: Incoming, max_bytes: int) -> Accepted | Rejected:
    """The message as stored, or why it cannot be: never raises on what a device sent."""
    if incoming.size_bytes > max_bytes:
        return _reject(
            incoming,
            f"too large: {incoming.size_bytes} bytes, the hub takes at most {max_bytes} "
            "(HUB_MAX_MESSAGE_BYTES)",
        )
    try:
        message_id = uuid.UUID(incoming.message_id or "")
    except ValueError:
        return _reject(
            incoming,
            f"message id {incoming.message_id!r} is not a UUID: the device's messenger sends "
            "each message's id (MQTT user property message_id, HTTP Idempotency-Key)",
        )
    try:
        text = incoming.raw.decode("utf-8")
        body = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        return _reject(incoming, f"not JSON: {exc}")
    if not isinstance(body, dict):
        return _reject(incoming, f"not a JSON object but a {type(body).__name__}")
    if "\\u0000" in text:  # Postgres's jsonb cannot hold it
        return _reject(incoming, "a string holds a NUL character (\\u0000)")
    version = body.get("schema_version", 1)
    if version not in SCHEMA_VERSIONS:
        return _reject(
            incoming,
            f"unknown schema version {version!r}: this hub reads {list(SCHEMA_VERSIONS)}; "
            "upgrade the hub before its devices",
        )
    device_id = incoming.device_id or body.get("device_id")
    if not isinstance(device_id, str) or not device_id.strip() or len(device_id) > 200:
        return _reject(
            incoming,
            "no device id: the device's messenger sends it (MQTT user property device_id, "
            "HTTP X-Device-Id)",
        )
    common = {
        "id": message_id,
        "device_id": device_id,
        "via": incoming.via,
        "received_at": incoming.received_at,
        "payload": text,
        "software_version": _software_version(incoming, body),
    }
    try:
        if body.get("kind") == "summary":
            summary = _Summary.model_validate(body)
            return Accepted(kind="summary", sent_at=summary.window.get("end"), **common)
        if "model_output_id" in body or "detections" in body:
            return _detection(body, common)
        if {"status", "metrics", "sent_at"} <= body.keys():
            heartbeat = schema.Heartbeat.model_validate(
                {k: body[k] for k in _HEARTBEAT_KEYS if k in body} | {"device_id": device_id}
            )
            return Accepted(
                kind="heartbeat",
                sent_at=heartbeat.sent_at,
                status=heartbeat.status,
                metrics=json.dumps({m.name: m.value for m in heartbeat.metrics}),
                deployment=heartbeat.deployment,
                **common,
            )
    except ValidationError as exc:
        return _reject(incoming, f"not a valid message: {_problems(exc)}")
    except _Invalid as exc:
        return _reject(incoming, f"not a valid detection message: {exc}")
    return _reject(
        incoming,
        f"not a detection, heartbeat or summary (keys: {', '.join(sorted(body)[:10])})",
    )


def _detection(body: dict[str, Any], common: dict[str, Any]) -> Accepted:
    """Checked here (a refusal names the field); the rows of ``detections`` are made from the
    payload by Postgres itself (store.py), as the message is inserted."""
    _uuid(body.get("model_output_id"), "model_output_id")
    if body.get("recording_id") is not None:
        _uuid(body["recording_id"], "recording_id")
    try:
        created_at = _TIME.validate_python(body.get("created_at"))
    except ValidationError as exc:
        raise _Invalid(f"created_at: {exc.errors()[0]['msg']}") from None
    detections = body.get("detections")
    if not isinstance(detections, list):
        raise _Invalid("detections: not a list")
    for i, d in enumerate(detections):
        if not isinstance(d, dict):
            raise _Invalid(f"detections.{i}: not an object")
        _uuid(d.get("id"), f"detections.{i}.id")
        _probability(d.get("detection_score"), f"detections.{i}.detection_score")
        _tags(d.get("tags", []), f"detections.{i}.tags")
    return Accepted(kind="detection", sent_at=created_at, detections=len(detections), **common)
