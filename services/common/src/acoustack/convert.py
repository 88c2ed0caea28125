"""The one place that turns schema objects into proto messages and back.

``from_proto`` builds plain dicts and validates them with the schema, so a malformed message fails
with the schema's own error, located by proto field name (a Timestamp that is no time at all fails
first, as ``errors.FieldError``, also by field name). An empty string, an unset message and an
UNSPECIFIED enum count as "not given" (proto3 cannot tell them from defaults).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from acoustack import limits, schema
from acoustack.errors import FieldError
from acoustack.v1 import types_pb2 as pb

_RECORDING_STATUS = {
    schema.RecordingStatus.TEMPORARY: pb.RECORDING_STATUS_TEMPORARY,
    schema.RecordingStatus.SAVED: pb.RECORDING_STATUS_SAVED,
    schema.RecordingStatus.DELETED: pb.RECORDING_STATUS_DELETED,
    schema.RecordingStatus.FAILED: pb.RECORDING_STATUS_FAILED,
}
_RECORDING_STATUS_BACK = {v: k for k, v in _RECORDING_STATUS.items()}

_PREDICTION_TYPE = {
    schema.PredictionType.PRESENCE: pb.PREDICTION_TYPE_PRESENCE,
    schema.PredictionType.SEQUENCE: pb.PREDICTION_TYPE_SEQUENCE,
    schema.PredictionType.EVENT: pb.PREDICTION_TYPE_EVENT,
}
_PREDICTION_TYPE_BACK = {v: k for k, v in _PREDICTION_TYPE.items()}

_RESPONSE_STATUS = {
    schema.ResponseStatus.SUCCESS: pb.RESPONSE_STATUS_SUCCESS,
    schema.ResponseStatus.FAILED: pb.RESPONSE_STATUS_FAILED,
    schema.ResponseStatus.ERROR: pb.RESPONSE_STATUS_ERROR,
    schema.ResponseStatus.TIMEOUT: pb.RESPONSE_STATUS_TIMEOUT,
}
_RESPONSE_STATUS_BACK = {v: k for k, v in _RESPONSE_STATUS.items()}

_MESSAGE_STATE = {
    schema.MessageState.DUE: pb.MESSAGE_STATE_DUE,
    schema.MessageState.BACKING_OFF: pb.MESSAGE_STATE_BACKING_OFF,
    schema.MessageState.SENT: pb.MESSAGE_STATE_SENT,
    schema.MessageState.DEAD: pb.MESSAGE_STATE_DEAD,
}
_MESSAGE_STATE_BACK = {v: k for k, v in _MESSAGE_STATE.items()}


def message_state_to_proto(state: schema.MessageState | None) -> int:
    return _MESSAGE_STATE[state] if state is not None else pb.MESSAGE_STATE_UNSPECIFIED


def message_state_from_proto(value: int) -> schema.MessageState | None:
    """None for UNSPECIFIED; an unknown number is returned as is so validation names it."""
    if value == pb.MESSAGE_STATE_UNSPECIFIED:
        return None
    return _MESSAGE_STATE_BACK.get(value, value)  # type: ignore[return-value]


def recording_status_to_proto(status: schema.RecordingStatus) -> int:
    return _RECORDING_STATUS[status]


def recording_status_from_proto(value: int) -> schema.RecordingStatus | None:
    """None for UNSPECIFIED; an unknown number is returned as is so validation names it."""
    if value == pb.RECORDING_STATUS_UNSPECIFIED:
        return None
    return _RECORDING_STATUS_BACK.get(value, value)  # type: ignore[return-value]


def response_status_to_proto(status: schema.ResponseStatus) -> int:
    return _RESPONSE_STATUS[status]


def response_status_from_proto(value: int) -> schema.ResponseStatus | None:
    """None for UNSPECIFIED (any status); an unknown value is returned as is, for the caller to
    refuse by name."""
    if value == pb.RESPONSE_STATUS_UNSPECIFIED:
        return None
    return _RESPONSE_STATUS_BACK.get(value, value)  # type: ignore[return-value]


def timestamp(value: dt.datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def _set_time(field: Timestamp, value: dt.datetime | None) -> None:
    if value is not None:
        field.FromDatetime(value)


def datetime_from_proto(message: Any, field: str) -> dt.datetime | None:
    """The time in ``message.field``; None when unset. A Timestamp that is no time at all (past
    year 9999, nanos out of range) is a FieldError naming ``field``; whether the time may be
    stored is the schema's to say."""
    if not message.HasField(field):
        return None
    value = getattr(message, field)
    problem = limits.timestamp_problem(value.seconds, value.nanos)
    if problem is not None:
        raise FieldError(field, problem)
    return value.ToDatetime(tzinfo=dt.UTC)


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    """Leave proto3 defaults out so the schema applies its own defaults or says the field is required."""
    if value is not None and value != "":
        out[key] = value


# --- to proto -----------------------------------------------------------------------------------


def deployment_to_proto(d: schema.Deployment) -> pb.Deployment:
    msg = pb.Deployment(id=str(d.id), name=d.name)
    if d.latitude is not None:
        msg.latitude = d.latitude
    if d.longitude is not None:
        msg.longitude = d.longitude
    _set_time(msg.started_at, d.started_at)
    _set_time(msg.ended_at, d.ended_at)
    return msg


def recording_to_proto(r: schema.Recording) -> pb.Recording:
    msg = pb.Recording(
        id=str(r.id),
        deployment_id=str(r.deployment_id),
        device_id=r.device_id,
        source_id=r.source_id,
        path=r.path,
        duration_s=r.duration_s,
        capture_samplerate_hz=r.capture_samplerate_hz,
        channels=r.channels,
        time_expansion=r.time_expansion,
        status=_RECORDING_STATUS[r.status],
        failure_reason=r.failure_reason,
    )
    _set_time(msg.started_at, r.started_at)
    _set_time(msg.created_at, r.created_at)
    return msg


def _predicted_tags_to_proto(tags: list[schema.PredictedTag], out: Any) -> None:
    for t in tags:
        out.add(tag=pb.Tag(key=t.tag.key, value=t.tag.value), confidence=t.confidence)


def detection_to_proto(d: schema.Detection) -> pb.Detection:
    msg = pb.Detection(
        id=str(d.id),
        prediction_type=_PREDICTION_TYPE[d.prediction_type],
        detection_score=d.detection_score,
    )
    if d.box is not None:
        msg.box.start_time_s = d.box.start_time_s
        msg.box.end_time_s = d.box.end_time_s
        msg.box.low_freq_hz = d.box.low_freq_hz
        msg.box.high_freq_hz = d.box.high_freq_hz
    _predicted_tags_to_proto(d.tags, msg.tags)
    return msg


def model_output_to_proto(o: schema.ModelOutput) -> pb.ModelOutput:
    msg = pb.ModelOutput(
        id=str(o.id),
        recording_id=str(o.recording_id),
        model_name=o.model_name,
        model_version=o.model_version,
    )
    _predicted_tags_to_proto(o.tags, msg.tags)
    msg.detections.extend(detection_to_proto(d) for d in o.detections)
    _set_time(msg.created_at, o.created_at)
    return msg


def message_to_proto(m: schema.Message) -> pb.Message:
    msg = pb.Message(
        id=str(m.id),
        content=m.content,
        priority=m.priority,
        attempts=m.attempts,
        failed_tries=m.failed_tries,
        refusals=m.refusals,
        last_status=_RESPONSE_STATUS[m.last_status] if m.last_status else 0,
        state=message_state_to_proto(m.state),
    )
    _set_time(msg.created_at, m.created_at)
    _set_time(msg.last_attempt_at, m.last_attempt_at)
    _set_time(msg.next_attempt_at, m.next_attempt_at)
    _set_time(msg.sent_at, m.sent_at)
    _set_time(msg.dead_at, m.dead_at)
    return msg


def response_to_proto(r: schema.Response) -> pb.Response:
    msg = pb.Response(
        message_id=str(r.message_id), status=_RESPONSE_STATUS[r.status], content=r.content
    )
    _set_time(msg.received_at, r.received_at)
    if r.retry_after_s is not None:
        msg.retry_after_s = r.retry_after_s
    return msg


def heartbeat_to_proto(h: schema.Heartbeat) -> pb.Heartbeat:
    msg = pb.Heartbeat(device_id=h.device_id, status=h.status)
    _set_time(msg.sent_at, h.sent_at)
    for m in h.metrics:
        msg.metrics.add(name=m.name, value=m.value, unit=m.unit)
    return msg


# --- from proto (to dicts, then validated) ------------------------------------------------------


def deployment_dict(msg: pb.Deployment) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put(out, "id", msg.id)
    _put(out, "name", msg.name)
    if msg.HasField("latitude"):
        out["latitude"] = msg.latitude
    if msg.HasField("longitude"):
        out["longitude"] = msg.longitude
    _put(out, "started_at", datetime_from_proto(msg, "started_at"))
    _put(out, "ended_at", datetime_from_proto(msg, "ended_at"))
    return out


def recording_dict(msg: pb.Recording) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("id", "deployment_id", "device_id", "source_id", "path", "failure_reason"):
        _put(out, name, getattr(msg, name))
    _put(out, "started_at", datetime_from_proto(msg, "started_at"))
    _put(out, "created_at", datetime_from_proto(msg, "created_at"))
    out["duration_s"] = msg.duration_s
    if msg.capture_samplerate_hz:
        out["capture_samplerate_hz"] = msg.capture_samplerate_hz
    if msg.channels:
        out["channels"] = msg.channels
    if msg.time_expansion:
        out["time_expansion"] = msg.time_expansion
    _put(out, "status", recording_status_from_proto(msg.status))
    return out


def _predicted_tags_dicts(tags: Any) -> list[dict[str, Any]]:
    """An unset confidence is left out, so the schema's default (1: certain) applies, as the
    proto says."""
    out = []
    for t in tags:
        tag: dict[str, Any] = {"tag": {"key": t.tag.key, "value": t.tag.value}}
        if t.HasField("confidence"):
            tag["confidence"] = t.confidence
        out.append(tag)
    return out


def detection_dict(msg: pb.Detection) -> dict[str, Any]:
    out: dict[str, Any] = {"detection_score": msg.detection_score}
    _put(out, "id", msg.id)
    if msg.prediction_type != pb.PREDICTION_TYPE_UNSPECIFIED:
        out["prediction_type"] = _PREDICTION_TYPE_BACK.get(msg.prediction_type, msg.prediction_type)
    if msg.HasField("box"):
        b = msg.box
        out["box"] = {
            "start_time_s": b.start_time_s,
            "end_time_s": b.end_time_s,
            "low_freq_hz": b.low_freq_hz,
            "high_freq_hz": b.high_freq_hz,
        }
    out["tags"] = _predicted_tags_dicts(msg.tags)
    return out


def model_output_dict(msg: pb.ModelOutput) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("id", "recording_id", "model_name", "model_version"):
        _put(out, name, getattr(msg, name))
    _put(out, "created_at", datetime_from_proto(msg, "created_at"))
    out["tags"] = _predicted_tags_dicts(msg.tags)
    out["detections"] = [detection_dict(d) for d in msg.detections]
    return out


def message_dict(msg: pb.Message) -> dict[str, Any]:
    out: dict[str, Any] = {
        "priority": msg.priority,
        "attempts": msg.attempts,
        "failed_tries": msg.failed_tries,
        "refusals": msg.refusals,
    }
    _put(out, "id", msg.id)
    _put(out, "content", msg.content)
    for name in ("created_at", "last_attempt_at", "next_attempt_at", "sent_at", "dead_at"):
        _put(out, name, datetime_from_proto(msg, name))
    _put(out, "last_status", response_status_from_proto(msg.last_status))
    _put(out, "state", message_state_from_proto(msg.state))
    return out


def response_dict(msg: pb.Response) -> dict[str, Any]:
    out: dict[str, Any] = {"content": msg.content}
    _put(out, "message_id", msg.message_id)
    if msg.status != pb.RESPONSE_STATUS_UNSPECIFIED:
        out["status"] = _RESPONSE_STATUS_BACK.get(msg.status, msg.status)
    _put(out, "received_at", datetime_from_proto(msg, "received_at"))
    if msg.HasField("retry_after_s"):
        out["retry_after_s"] = msg.retry_after_s
    return out


def deployment_from_proto(msg: pb.Deployment) -> schema.Deployment:
    return schema.Deployment.model_validate(deployment_dict(msg))


def recording_from_proto(msg: pb.Recording) -> schema.Recording:
    return schema.Recording.model_validate(recording_dict(msg))


def model_output_from_proto(msg: pb.ModelOutput) -> schema.ModelOutput:
    return schema.ModelOutput.model_validate(model_output_dict(msg))


def message_from_proto(msg: pb.Message) -> schema.Message:
    return schema.Message.model_validate(message_dict(msg))


def response_from_proto(msg: pb.Response) -> schema.Response:
    return schema.Response.model_validate(response_dict(msg))


def heartbeat_from_proto(msg: pb.Heartbeat) -> schema.Heartbeat:
    data: dict[str, Any] = {"status": msg.status}
    _put(data, "device_id", msg.device_id)
    _put(data, "sent_at", datetime_from_proto(msg, "sent_at"))
    data["metrics"] = [{"name": m.name, "value": m.value, "unit": m.unit} for m in msg.metrics]
    return schema.Heartbeat.model_validate(data)
