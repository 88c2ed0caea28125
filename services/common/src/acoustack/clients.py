"""gRPC clients with retry.

Every call that fails with UNAVAILABLE (the server or its database is down, a restart is under way)
is retried with exponential backoff and jitter until the policy's time budget is spent; then the
caller gets an UnavailableError naming the target. Other failures come back as the typed errors of
``acoustack.errors`` with the server's message.

Methods return the contract's proto messages: a model output of 200 detections decodes in C in tens
of microseconds, while building schema objects from it costs milliseconds. Use ``acoustack.convert``
when schema objects are wanted. Arguments may be schema objects or proto messages.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from acoustack import convert, schema
from acoustack.errors import NotFoundError, UnavailableError, from_rpc_error
from acoustack.identity import LearnedIdentity
from acoustack.v1 import store_pb2 as spb
from acoustack.v1 import store_pb2_grpc
from acoustack.v1 import types_pb2 as pb

log = logging.getLogger(__name__)
Reply = TypeVar("Reply")

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often to retry a call that met UNAVAILABLE."""

    initial_backoff_s: float = 0.05
    max_backoff_s: float = 5.0
    multiplier: float = 2.0
    # Total time spent retrying one call before giving up; 0 disables retries.
    budget_s: float = 30.0

    def delays(self) -> Iterable[float]:
        """Full-jitter exponential backoff, so restarted clients do not retry in lockstep."""
        ceiling = self.initial_backoff_s
        while True:
            yield random.uniform(0, ceiling)
            ceiling = min(ceiling * self.multiplier, self.max_backoff_s)


class GrpcClient:
    """A channel plus the retry loop; service clients add typed methods on top."""

    def __init__(
        self,
        target: str,
        *,
        call_timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.target = target
        self.call_timeout_s = call_timeout_s
        self.retry = retry or RetryPolicy()
        self._channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
                # Reconnect quickly after the server comes back; our own loop does the backing off.
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 2000),
            ],
        )

    @property
    def channel(self) -> grpc.Channel:
        return self._channel

    def call(
        self,
        method: Callable[..., Reply],
        request: Any,
        *,
        name: str = "",
        retry: RetryPolicy | None = None,
    ) -> Reply:
        """Call with retry (``retry``, else the client's policy). For a client-streaming method,
        ``request`` is a function returning a fresh request iterator, since a retry must send the
        stream again from its start."""
        retry = retry or self.retry
        deadline = time.monotonic() + retry.budget_s
        delays = iter(retry.delays())
        attempt = 0
        while True:
            attempt += 1
            try:
                return method(
                    request() if callable(request) else request, timeout=self.call_timeout_s
                )
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                if code is not grpc.StatusCode.UNAVAILABLE:
                    raise from_rpc_error(exc, self.target) from None
                delay = next(delays)
                if time.monotonic() + delay > deadline:
                    raise UnavailableError(
                        f"{self.target} unavailable after {attempt} attempts over "
                        f"{retry.budget_s:.0f} s ({name or 'call'}): {exc.details()}",
                        help="check that the service and its database are running",
                    ) from None
                log.warning(
                    "%s unavailable (%s), attempt %d; retrying in %.2f s",
                    self.target,
                    exc.details(),
                    attempt,
                    delay,
                )
                time.sleep(delay)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _proto(value: Any, to_proto: Callable[[Any], Any]) -> Any:
    return to_proto(value) if isinstance(value, schema.Schema) else value


def _ts(value: dt.datetime | None) -> Any:
    return convert.timestamp(value) if value is not None else None


class StoreClient(GrpcClient):
    """Typed access to the storage service (proto/acoustack/v1/store.proto)."""

    def __init__(self, target: str, **kwargs: Any) -> None:
        super().__init__(target, **kwargs)
        self.stub = store_pb2_grpc.StoreStub(self.channel)

    # the device
    def device_id(self, *, retry: RetryPolicy | None = None) -> str:
        """The device's id, which storage owns (see acoustack.identity)."""
        reply = self.call(
            self.stub.GetDevice, spb.GetDeviceRequest(), name="GetDevice", retry=retry
        )
        return reply.device_id

    def retention(self, window_s: float = 0.0) -> pb.RetentionState | None:
        """What retention deleted in the window (0: a day) and its last run; None before any."""
        try:
            reply = self.call(
                self.stub.GetRetention,
                spb.GetRetentionRequest(window_s=window_s),
                name="GetRetention",
            )
        except NotFoundError:
            return None
        return reply.retention

    def learned_identity(self, data_dir: Path | None) -> LearnedIdentity:
        """The device id for a service other than storage, kept in its ``data_dir`` as well. Asked
        with a short retry: while storage is away the kept copy answers."""
        return LearnedIdentity(lambda: self.device_id(retry=RetryPolicy(budget_s=2.0)), data_dir)

    # deployments
    def start_deployment(
        self,
        name: str,
        latitude: float | None = None,
        longitude: float | None = None,
        *,
        deployment_id: uuid.UUID | str | None = None,
        started_at: dt.datetime | None = None,
    ) -> pb.Deployment:
        request = spb.StartDeploymentRequest(
            id=str(deployment_id or uuid.uuid4()),
            name=name,
            latitude=latitude,
            longitude=longitude,
            started_at=_ts(started_at),
        )
        return self.call(self.stub.StartDeployment, request, name="StartDeployment").deployment

    def end_deployment(
        self, deployment_id: uuid.UUID | str, ended_at: dt.datetime | None = None
    ) -> pb.Deployment:
        request = spb.EndDeploymentRequest(deployment_id=str(deployment_id), ended_at=_ts(ended_at))
        return self.call(self.stub.EndDeployment, request, name="EndDeployment").deployment

    def current_deployment(self) -> pb.Deployment | None:
        reply = self.call(
            self.stub.GetCurrentDeployment,
            spb.GetCurrentDeploymentRequest(),
            name="GetCurrentDeployment",
        )
        return reply.deployment if reply.HasField("deployment") else None

    def get_deployment(self, deployment_id: uuid.UUID | str) -> pb.Deployment:
        request = spb.GetDeploymentRequest(deployment_id=str(deployment_id))
        return self.call(self.stub.GetDeployment, request, name="GetDeployment").deployment

    # recordings
    def store_recording(
        self, recording: schema.Recording | pb.Recording
    ) -> spb.StoreRecordingResponse:
        request = spb.StoreRecordingRequest(recording=_proto(recording, convert.recording_to_proto))
        return self.call(self.stub.StoreRecording, request, name="StoreRecording")

    def get_recording(
        self, recording_id: uuid.UUID | str, *, include_model_outputs: bool = False
    ) -> spb.RecordingEntry:
        request = spb.GetRecordingRequest(
            recording_id=str(recording_id), include_model_outputs=include_model_outputs
        )
        return self.call(self.stub.GetRecording, request, name="GetRecording").entry

    def get_recordings_by_path(
        self, paths: Sequence[str], *, include_model_outputs: bool = True
    ) -> spb.GetRecordingsByPathResponse:
        request = spb.GetRecordingsByPathRequest(
            paths=list(paths), include_model_outputs=include_model_outputs
        )
        return self.call(self.stub.GetRecordingsByPath, request, name="GetRecordingsByPath")

    def list_recordings(self, **filters: Any) -> list[spb.RecordingEntry]:
        """Filters as in ListRecordingsRequest; times may be datetimes."""
        for key in ("started_from", "started_to"):
            if isinstance(filters.get(key), dt.datetime):
                filters[key] = convert.timestamp(filters[key])
        if "statuses" in filters:
            filters["statuses"] = [
                convert.recording_status_to_proto(s) if isinstance(s, schema.RecordingStatus) else s
                for s in filters["statuses"]
            ]
        request = spb.ListRecordingsRequest(**filters)
        return list(self.call(self.stub.ListRecordings, request, name="ListRecordings").entries)

    def update_recording_path(
        self,
        recording_id: uuid.UUID | str,
        path: str,
        status: schema.RecordingStatus | None = None,
    ) -> pb.Recording:
        request = spb.UpdateRecordingPathRequest(
            recording_id=str(recording_id),
            path=path,
            status=convert.recording_status_to_proto(status) if status else 0,
        )
        return self.call(
            self.stub.UpdateRecordingPath, request, name="UpdateRecordingPath"
        ).recording

    def mark_recording_failed(
        self,
        recording_id: uuid.UUID | str,
        reason: str,
        *,
        only_if: schema.RecordingStatus | None = None,
    ) -> pb.Recording:
        """With ``only_if``, FailedPreconditionError when the recording has moved on."""
        request = spb.MarkRecordingFailedRequest(
            recording_id=str(recording_id),
            reason=reason,
            only_if_status=convert.recording_status_to_proto(only_if) if only_if else 0,
        )
        return self.call(
            self.stub.MarkRecordingFailed, request, name="MarkRecordingFailed"
        ).recording

    def mark_recording_deleted(self, recording_id: uuid.UUID | str) -> pb.Recording:
        request = spb.MarkRecordingDeletedRequest(recording_id=str(recording_id))
        return self.call(
            self.stub.MarkRecordingDeleted, request, name="MarkRecordingDeleted"
        ).recording

    # model outputs
    def store_model_output(
        self,
        model_output: schema.ModelOutput | pb.ModelOutput,
        messages: Sequence[schema.Message | pb.Message] = (),
    ) -> spb.StoreModelOutputResponse:
        request = spb.StoreModelOutputRequest(
            model_output=_proto(model_output, convert.model_output_to_proto),
            messages=[_proto(m, convert.message_to_proto) for m in messages],
        )
        return self.call(self.stub.StoreModelOutput, request, name="StoreModelOutput")

    def list_detections(self, **filters: Any) -> list[spb.DetectionHit]:
        return self.list_detections_page(**filters)[0]

    def list_detections_page(self, **filters: Any) -> tuple[list[spb.DetectionHit], str]:
        """One page of hits and the next page's token (empty: the last page). Filters as in
        ListDetectionsRequest; times may be datetimes."""
        for key in ("started_from", "started_to"):
            if isinstance(filters.get(key), dt.datetime):
                filters[key] = convert.timestamp(filters[key])
        request = spb.ListDetectionsRequest(**filters)
        reply = self.call(self.stub.ListDetections, request, name="ListDetections")
        return list(reply.hits), reply.next_page_token

    def count_detections(
        self,
        started_from: dt.datetime,
        started_to: dt.datetime,
        *,
        by_day: bool = False,
        tag_key: str = "",
        time_zone: str = "",
        deployment_id: str = "",
        model_name: str = "",
    ) -> list[spb.DetectionCount]:
        """Detections per local hour (or day) per tag value, summed by the store."""
        request = spb.CountDetectionsRequest(
            started_from=convert.timestamp(started_from),
            started_to=convert.timestamp(started_to),
            bucket=spb.TIME_BUCKET_DAY if by_day else spb.TIME_BUCKET_HOUR,
            tag_key=tag_key,
            time_zone=time_zone,
            deployment_id=deployment_id,
            model_name=model_name,
        )
        return list(self.call(self.stub.CountDetections, request, name="CountDetections").counts)

    def retention_plan(
        self, file_management: dict[str, Any] | None = None, limit: int = 10
    ) -> spb.GetRetentionPlanResponse:
        """What retention would delete next under this ``file_management`` section."""
        request = spb.GetRetentionPlanRequest(
            file_management_json=json.dumps(file_management or {}), limit=limit
        )
        return self.call(self.stub.GetRetentionPlan, request, name="GetRetentionPlan")

    # outbox
    def store_message(self, message: schema.Message | pb.Message) -> spb.StoreMessageResponse:
        request = spb.StoreMessageRequest(message=_proto(message, convert.message_to_proto))
        return self.call(self.stub.StoreMessage, request, name="StoreMessage")

    def get_unsent_messages(
        self, limit: int = 100, *, newest_first: bool = False, after_id: str = ""
    ) -> list[pb.Message]:
        """Due messages; ``after_id``: the page after that message."""
        order = spb.SORT_ORDER_NEWEST_FIRST if newest_first else spb.SORT_ORDER_OLDEST_FIRST
        request = spb.GetUnsentMessagesRequest(limit=limit, order=order, after_id=after_id)
        return list(
            self.call(self.stub.GetUnsentMessages, request, name="GetUnsentMessages").messages
        )

    def store_response(
        self, response: schema.Response | pb.Response, outcome: spb.TryOutcome | None = None
    ) -> None:
        """Keep a response; ``outcome`` with the last one of a try that had no success."""
        request = spb.StoreResponseRequest(
            response=_proto(response, convert.response_to_proto), outcome=outcome
        )
        self.call(self.stub.StoreResponse, request, name="StoreResponse")

    def store_responses(
        self, responses: Sequence[tuple[schema.Response | pb.Response, spb.TryOutcome | None]]
    ) -> None:
        """Many responses in one call and one transaction (StoreResponses)."""
        request = spb.StoreResponsesRequest(
            responses=[
                spb.StoreResponseRequest(
                    response=_proto(response, convert.response_to_proto), outcome=outcome
                )
                for response, outcome in responses
            ]
        )
        self.call(self.stub.StoreResponses, request, name="StoreResponses")

    def count_messages(self) -> pb.OutboxCounts:
        request = spb.CountMessagesRequest()
        return self.call(self.stub.CountMessages, request, name="CountMessages").counts

    def list_messages(
        self,
        state: schema.MessageState | None = None,
        *,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[pb.MessageEntry]:
        request = spb.ListMessagesRequest(
            state=convert.message_state_to_proto(state),
            limit=limit,
            order=spb.SORT_ORDER_NEWEST_FIRST if newest_first else spb.SORT_ORDER_OLDEST_FIRST,
        )
        return list(self.call(self.stub.ListMessages, request, name="ListMessages").entries)

    def retry_messages(
        self, message_ids: Iterable[uuid.UUID | str] = (), *, all_dead: bool = False
    ) -> list[str]:
        request = spb.RetryMessagesRequest(
            message_ids=[str(i) for i in message_ids], all_dead=all_dead
        )
        return list(self.call(self.stub.RetryMessages, request, name="RetryMessages").message_ids)

    def list_responses(
        self,
        message_id: uuid.UUID | str | None = None,
        *,
        status: schema.ResponseStatus | None = None,
        limit: int = 1,
    ) -> list[pb.Response]:
        """One message's responses; without ``message_id``, the newest ``limit`` of all."""
        request = spb.ListResponsesRequest(
            message_id=str(message_id) if message_id else "",
            status=convert.response_status_to_proto(status) if status else 0,
            limit=0 if message_id else limit,
        )
        return list(self.call(self.stub.ListResponses, request, name="ListResponses").responses)
