"""The gRPC face of the store: decode and validate requests, call the repository, encode replies.

Bad input is INVALID_ARGUMENT naming the field, unknown ids NOT_FOUND, a database that is down
UNAVAILABLE; anything unexpected is logged and returned as INTERNAL, never UNKNOWN. Each record is
validated by its schema (a model output by the wire check) before the repository is called; the
repository checks the single values it is given (paths, reasons, query values) itself.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from pydantic import ValidationError

from acoustack import convert, schema
from acoustack.errors import FieldError, InvalidArgumentError, quote, validation_message
from acoustack.grpc_server import rpc_errors
from acoustack.v1 import store_pb2 as spb
from acoustack.v1 import store_pb2_grpc
from acoustack.wire_validation import check_model_output
from acoustack_storage.activity import ActivityQuery
from acoustack_storage.device import DeviceIdentity
from acoustack_storage.files import build_retention
from acoustack_storage.repository import (
    DetectionFilter,
    PostgresStore,
    RecordingFilter,
    StoredRecording,
    TryOutcome,
)
from acoustack_storage.retention import retention_state

log = logging.getLogger(__name__)


def _validate(build: Callable[[], Any], root: str) -> Any:
    try:
        return build()
    except ValidationError as exc:
        raise InvalidArgumentError(validation_message(exc, root)) from None
    except FieldError as exc:  # a Timestamp that is no time, found while converting
        raise exc.under(root) from None


def _uuid(value: str, field: str, *, required: bool = True) -> uuid.UUID | None:
    if not value:
        if required:
            raise InvalidArgumentError(f"{field}: required")
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgumentError(f"{field}: {quote(value)} is not a UUID") from None


MAX_RESPONSES_PER_CALL = 1000


def _response_and_outcome(request: Any, root: str) -> tuple[schema.Response, TryOutcome | None]:
    """A StoreResponseRequest's response and outcome, checked; errors name ``root`` first."""
    if not request.HasField("response"):
        raise InvalidArgumentError(f"{root}response: required")
    response = _validate(lambda: convert.response_from_proto(request.response), f"{root}response")
    if not request.HasField("outcome"):
        return response, None
    try:
        return response, TryOutcome(
            refused=request.outcome.refused,
            retry_in_s=request.outcome.retry_in_s,
            dead_after_refusals=request.outcome.dead_after_refusals,
        )
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{root}{exc}") from None


def _time(message: Any, field: str) -> dt.datetime | None:
    return convert.datetime_from_proto(message, field)


_SORT_ORDERS = frozenset(spb.SortOrder.values())


def _newest_first(request: Any) -> bool:
    if request.order not in _SORT_ORDERS:
        raise InvalidArgumentError(f"order: {request.order} is not a SortOrder")
    return request.order == spb.SORT_ORDER_NEWEST_FIRST


def _fill_entry(entry: spb.RecordingEntry, stored: StoredRecording) -> spb.RecordingEntry:
    entry.recording.CopyFrom(convert.recording_to_proto(stored.recording))
    for i, document in enumerate(stored.model_output_documents):
        try:
            entry.model_outputs.add().MergeFromString(document)
        except DecodeError:  # a stored document that does not parse: left out, said in the log
            del entry.model_outputs[-1]
            log.warning(
                "recording %s: skipping its model output %d: the stored document does not parse",
                stored.recording.id,
                i,
            )
    return entry


class StoreServicer(store_pb2_grpc.StoreServicer):
    def __init__(self, store: PostgresStore, device: DeviceIdentity | None = None) -> None:
        self.store = store
        # Without one given (tests), the id is kept in the database alone.
        self.device = device or DeviceIdentity(store)

    @rpc_errors
    def GetDevice(self, request, context):
        return spb.GetDeviceResponse(device_id=self.device.get())

    @rpc_errors
    def GetRetention(self, request, context):
        return spb.GetRetentionResponse(retention=retention_state(self.store, request.window_s))

    # deployments
    @rpc_errors
    def StartDeployment(self, request, context):
        message = convert.pb.Deployment(
            id=request.id,
            name=request.name,
            latitude=request.latitude if request.HasField("latitude") else None,
            longitude=request.longitude if request.HasField("longitude") else None,
            started_at=request.started_at if request.HasField("started_at") else None,
        )
        deployment = _validate(lambda: convert.deployment_from_proto(message), "")
        started = self.store.start_deployment(deployment)
        return spb.StartDeploymentResponse(deployment=convert.deployment_to_proto(started))

    @rpc_errors
    def EndDeployment(self, request, context):
        deployment_id = _uuid(request.deployment_id, "deployment_id")
        ended_at = _time(request, "ended_at") or schema.utc_now()
        ended = self.store.end_deployment(deployment_id, ended_at)
        return spb.EndDeploymentResponse(deployment=convert.deployment_to_proto(ended))

    @rpc_errors
    def GetCurrentDeployment(self, request, context):
        current = self.store.current_deployment()
        if current is None:
            return spb.GetCurrentDeploymentResponse()
        return spb.GetCurrentDeploymentResponse(deployment=convert.deployment_to_proto(current))

    @rpc_errors
    def GetDeployment(self, request, context):
        found = self.store.get_deployment(_uuid(request.deployment_id, "deployment_id"))
        return spb.GetDeploymentResponse(deployment=convert.deployment_to_proto(found))

    # recordings
    @rpc_errors
    def StoreRecording(self, request, context):
        if not request.HasField("recording"):
            raise InvalidArgumentError("recording: required")
        recording = _validate(lambda: convert.recording_from_proto(request.recording), "recording")
        stored, created = self.store.store_recording(recording)
        return spb.StoreRecordingResponse(
            recording=convert.recording_to_proto(stored), created=created
        )

    @rpc_errors
    def GetRecording(self, request, context):
        stored = self.store.get_recording(
            _uuid(request.recording_id, "recording_id"),
            include_model_outputs=request.include_model_outputs,
        )
        reply = spb.GetRecordingResponse()
        _fill_entry(reply.entry, stored)
        return reply

    @rpc_errors
    def GetRecordingsByPath(self, request, context):
        if not request.paths:
            raise InvalidArgumentError("paths: give at least one path")
        entries, missing = self.store.get_recordings_by_path(
            list(request.paths), include_model_outputs=request.include_model_outputs
        )
        reply = spb.GetRecordingsByPathResponse(missing_paths=missing)
        for stored in entries:
            _fill_entry(reply.entries.add(), stored)
        return reply

    @rpc_errors
    def ListRecordings(self, request, context):
        statuses = []
        for i, value in enumerate(request.statuses):
            status = convert.recording_status_from_proto(value)
            if not isinstance(status, schema.RecordingStatus):
                raise InvalidArgumentError(f"statuses.{i}: {value} is not a recording status")
            statuses.append(status)
        query = RecordingFilter(
            deployment_id=_uuid(request.deployment_id, "deployment_id", required=False),
            statuses=tuple(statuses),
            started_from=_time(request, "started_from"),
            started_to=_time(request, "started_to"),
            limit=request.limit,
            newest_first=_newest_first(request),
        )
        found = self.store.list_recordings(
            query, include_model_outputs=request.include_model_outputs
        )
        reply = spb.ListRecordingsResponse()
        for stored in found:
            _fill_entry(reply.entries.add(), stored)
        return reply

    @rpc_errors
    def UpdateRecordingPath(self, request, context):
        status = None
        if request.status:
            status = convert.recording_status_from_proto(request.status)
            if not isinstance(status, schema.RecordingStatus):
                raise InvalidArgumentError(f"status: {request.status} is not a recording status")
        updated = self.store.update_recording_path(
            _uuid(request.recording_id, "recording_id"), request.path, status
        )
        return spb.UpdateRecordingPathResponse(recording=convert.recording_to_proto(updated))

    @rpc_errors
    def MarkRecordingFailed(self, request, context):
        only_if = convert.recording_status_from_proto(request.only_if_status)
        if only_if is not None and not isinstance(only_if, schema.RecordingStatus):
            raise InvalidArgumentError(f"only_if_status: {request.only_if_status} is not a status")
        updated = self.store.mark_recording_failed(
            _uuid(request.recording_id, "recording_id"), request.reason, only_if=only_if
        )
        return spb.MarkRecordingFailedResponse(recording=convert.recording_to_proto(updated))

    @rpc_errors
    def MarkRecordingDeleted(self, request, context):
        updated = self.store.mark_recording_deleted(_uuid(request.recording_id, "recording_id"))
        return spb.MarkRecordingDeletedResponse(recording=convert.recording_to_proto(updated))

    # model outputs
    @rpc_errors
    def StoreModelOutput(self, request, context):
        if not request.HasField("model_output"):
            raise InvalidArgumentError("model_output: required")
        output = request.model_output
        tag_confidences = check_model_output(output)
        messages = [
            _validate(lambda m=m: convert.message_from_proto(m), f"messages.{i}")
            for i, m in enumerate(request.messages)
        ]
        output_id, created = self.store.store_model_output(
            output, messages, tag_confidences=tag_confidences
        )
        return spb.StoreModelOutputResponse(model_output_id=str(output_id), created=created)

    @rpc_errors
    def ListDetections(self, request, context):
        query = DetectionFilter(
            started_from=_time(request, "started_from"),
            started_to=_time(request, "started_to"),
            model_name=request.model_name,
            min_score=request.min_score if request.HasField("min_score") else None,
            max_score=request.max_score if request.HasField("max_score") else None,
            tag_key=request.tag_key,
            tag_value=request.tag_value,
            deployment_id=_uuid(request.deployment_id, "deployment_id", required=False),
            limit=request.limit,
            newest_first=_newest_first(request),
            page_token=request.page_token,
        )
        hits, next_page_token = self.store.list_detections_page(query)
        reply = spb.ListDetectionsResponse(next_page_token=next_page_token)
        for hit in hits:
            reply.hits.add(
                detection=hit.detection,
                recording_id=str(hit.recording_id),
                model_output_id=str(hit.model_output_id),
                model_name=hit.model_name,
                recording_started_at=convert.timestamp(hit.recording_started_at),
            )
        return reply

    @rpc_errors
    def CountDetections(self, request, context):
        started_from = _time(request, "started_from")
        started_to = _time(request, "started_to")
        if started_from is None or started_to is None:
            raise InvalidArgumentError("started_from, started_to: both required")
        query = ActivityQuery(
            started_from=started_from,
            started_to=started_to,
            bucket="day" if request.bucket == spb.TIME_BUCKET_DAY else "hour",
            tag_key=request.tag_key or "species",
            time_zone=request.time_zone or "UTC",
            deployment_id=_uuid(request.deployment_id, "deployment_id", required=False),
            model_name=request.model_name,
        )
        reply = spb.CountDetectionsResponse()
        for count in self.store.count_detections(query):
            reply.counts.add(
                bucket_start=convert.timestamp(count.bucket_start),
                tag_value=count.tag_value,
                detections=count.detections,
            )
        return reply

    @rpc_errors
    def GetRetentionPlan(self, request, context):
        if not 0 <= request.limit <= 1000:
            raise InvalidArgumentError(f"limit: {request.limit} is not within 0..1000")
        try:
            section = json.loads(request.file_management_json or "{}")
        except (ValueError, RecursionError):
            raise InvalidArgumentError("file_management_json: not JSON") from None
        if not isinstance(section, dict):
            raise InvalidArgumentError("file_management_json: must be a JSON object")
        retention = build_retention(self.store, {"file_management": section})
        plan = retention.next_deletions(request.limit or 10)
        reply = spb.GetRetentionPlanResponse(
            enabled=plan.enabled,
            free_mb=-1.0 if plan.free_mb is None else plan.free_mb,
            kept_as_best=plan.kept_as_best,
        )
        for item in plan.next:
            entry = reply.next.add(
                recording=convert.recording_to_proto(item.recording), reason=item.reason
            )
            if item.due_at is not None:
                entry.due_at.CopyFrom(convert.timestamp(item.due_at))
        return reply

    # outbox
    @rpc_errors
    def StoreMessage(self, request, context):
        if not request.HasField("message"):
            raise InvalidArgumentError("message: required")
        message = _validate(lambda: convert.message_from_proto(request.message), "message")
        stored, created = self.store.store_message(message)
        return spb.StoreMessageResponse(message=convert.message_to_proto(stored), created=created)

    @rpc_errors
    def GetUnsentMessages(self, request, context):
        after = _uuid(request.after_id, "after_id") if request.after_id else None
        messages = self.store.get_unsent_messages(
            request.limit, newest_first=_newest_first(request), after=after
        )
        return spb.GetUnsentMessagesResponse(
            messages=[convert.message_to_proto(m) for m in messages]
        )

    @rpc_errors
    def StoreResponse(self, request, context):
        self.store.store_response(*_response_and_outcome(request, ""))
        return spb.StoreResponseResponse()

    @rpc_errors
    def StoreResponses(self, request, context):
        if not 1 <= len(request.responses) <= MAX_RESPONSES_PER_CALL:
            raise InvalidArgumentError(
                f"responses: {len(request.responses)} given; send 1..{MAX_RESPONSES_PER_CALL}"
            )
        self.store.store_responses(
            [
                _response_and_outcome(item, f"responses.{index}.")
                for index, item in enumerate(request.responses)
            ]
        )
        return spb.StoreResponsesResponse()

    @rpc_errors
    def ListResponses(self, request, context):
        status = convert.response_status_from_proto(request.status)
        if status is not None and not isinstance(status, schema.ResponseStatus):
            raise InvalidArgumentError(f"status: {request.status} is not a ResponseStatus")
        if not 0 <= request.limit <= 1000:
            raise InvalidArgumentError(f"limit: {request.limit} is not within 0..1000")
        responses = self.store.list_responses(
            _uuid(request.message_id, "message_id", required=False),
            status,
            request.limit or 1,
        )
        return spb.ListResponsesResponse(
            responses=[convert.response_to_proto(r) for r in responses]
        )

    @rpc_errors
    def CountMessages(self, request, context):
        counts = self.store.count_messages()
        reply = spb.CountMessagesResponse()
        reply.counts.due = counts.due
        reply.counts.backing_off = counts.backing_off
        reply.counts.dead = counts.dead
        reply.counts.sent = counts.sent
        if counts.next_attempt_at is not None:
            reply.counts.next_attempt_at.FromDatetime(counts.next_attempt_at)
        return reply

    @rpc_errors
    def ListMessages(self, request, context):
        state = convert.message_state_from_proto(request.state)
        if state is not None and not isinstance(state, schema.MessageState):
            raise InvalidArgumentError(f"state: {request.state} is not a MessageState")
        reply = spb.ListMessagesResponse()
        for message, response in self.store.list_messages(
            state, request.limit, newest_first=_newest_first(request)
        ):
            entry = reply.entries.add(message=convert.message_to_proto(message))
            if response is not None:
                entry.last_response.CopyFrom(convert.response_to_proto(response))
        return reply

    @rpc_errors
    def RetryMessages(self, request, context):
        ids = [_uuid(value, f"message_ids.{n}") for n, value in enumerate(request.message_ids)]
        retried = self.store.retry_messages(ids, all_dead=request.all_dead)
        return spb.RetryMessagesResponse(message_ids=[str(i) for i in retried])


def register(servicer: StoreServicer) -> Callable[[grpc.Server], str]:
    def add(server: grpc.Server) -> str:
        store_pb2_grpc.add_StoreServicer_to_server(servicer, server)
        return spb.DESCRIPTOR.services_by_name["Store"].full_name

    return add
