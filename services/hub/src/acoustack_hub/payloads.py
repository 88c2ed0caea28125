"""What a device sent, read into what the hub stores, or refused with the reason (no transport).

Devices send three kinds of message (docs/messaging.md), told apart by their shape, since they
carry no kind of their own except summaries:

- a detection message: ``model_output_id``, ``recording_id``, ``model``, ``created_at``, ``tags``
  and ``detections`` (acoustack.components.messages);
- a heartbeat: ``device_id``, ``sent_at``, ``status``, ``metrics`` (acoustack.schema.Heartbeat);
- a summary: ``"kind": "summary"`` (acoustack_messenger.summaries).

No device sends a ``schema_version`` today: none means version 1. A message naming another is
refused, so a hub older than its devices says so instead of storing what it cannot read.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from acoustack import schema

SCHEMA_VERSIONS = (1,)
HEAD_BYTES = 1024  # what is kept of a rejected payload
SPECIES_KEY = "species"
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
    user_agent: str | None = None
    size: int | None = None  # when only the head of a message too large was kept

    @property
    def size_bytes(self) -> int:
        return len(self.raw) if self.size is None else self.size


@dataclass(frozen=True)
class DetectionRow:
    id: uuid.UUID
    recording_id: uuid.UUID | None
    model_name: str | None
    detected_at: dt.datetime
    species: str | None
    score: float
    tags: str  # JSON


@dataclass(frozen=True)
class Accepted:
    id: uuid.UUID
    device_id: str
    kind: str
    via: str
    sent_at: dt.datetime | None
    received_at: dt.datetime
    payload: str  # JSON text, as Postgres's jsonb takes it
    detections: list[DetectionRow] = field(default_factory=list)
    status: str | None = None  # a heartbeat's verdict
    metrics: str | None = None  # a heartbeat's metrics, JSON {name: value}
    software_version: str | None = None


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


class _Tag(_Loose):
    key: str
    value: str
    confidence: Annotated[float, Field(ge=0, le=1)] = 1.0


class _Detection(_Loose):
    id: uuid.UUID
    detection_score: Annotated[float, Field(ge=0, le=1)]
    tags: list[_Tag] = Field(default_factory=list)


class _Model(_Loose):
    name: str | None = None
    version: str | None = None


class _DetectionMessage(_Loose):
    model_output_id: uuid.UUID
    recording_id: uuid.UUID | None = None
    model: _Model = Field(default_factory=_Model)
    created_at: schema.UTCDatetime
    detections: list[_Detection]


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


def _best_species(tags: list[_Tag]) -> str | None:
    chosen = [t for t in tags if t.key == SPECIES_KEY]
    return max(chosen, key=lambda t: t.confidence).value if chosen else None


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
                {k: body[k] for k in ("device_id", "sent_at", "status", "metrics") if k in body}
                | {"device_id": device_id}
            )
            return Accepted(
                kind="heartbeat",
                sent_at=heartbeat.sent_at,
                status=heartbeat.status,
                metrics=json.dumps({m.name: m.value for m in heartbeat.metrics}),
                **common,
            )
    except ValidationError as exc:
        return _reject(incoming, f"not a valid message: {_problems(exc)}")
    return _reject(
        incoming,
        f"not a detection, heartbeat or summary (keys: {', '.join(sorted(body)[:10])})",
    )


def _detection(body: dict[str, Any], common: dict[str, Any]) -> Accepted:
    message = _DetectionMessage.model_validate(body)
    rows = [
        DetectionRow(
            id=d.id,
            recording_id=message.recording_id,
            model_name=message.model.name,
            detected_at=message.created_at,
            species=_best_species(d.tags),
            score=d.detection_score,
            tags=json.dumps([t.model_dump() for t in d.tags]),
        )
        for d in message.detections
    ]
    return Accepted(kind="detection", sent_at=message.created_at, detections=rows, **common)
