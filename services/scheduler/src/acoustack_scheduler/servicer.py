"""The gRPC face of the scheduler's Control API (proto/acoustack/v1/control.proto).

Waits a caller asks for (a flush, a profile) are seconds from 0 (the default) to an hour; anything
else (negative, NaN, infinite, longer) is refused by field rather than waited for."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence

import grpc

from acoustack import convert
from acoustack.errors import FailedPreconditionError, FieldError, InvalidArgumentError
from acoustack.grpc_server import rpc_errors
from acoustack.v1 import check_pb2, control_pb2, control_pb2_grpc
from acoustack_scheduler.config_store import ConfigStore
from acoustack_scheduler.lifecycle import CheckResult, Lifecycle
from acoustack_scheduler.outbox import OutboxControl
from acoustack_scheduler.status import StatusReporter
from acoustack_scheduler.task_runner import TaskRunner

log = logging.getLogger(__name__)


# The longest wait a request may ask for: a flush of a day's backlog takes minutes, not hours.
MAX_WAIT_S = 3600.0


def _wait_s(value: float, field: str, default: float) -> float:
    if value == 0:
        return default
    if not (math.isfinite(value) and 0 < value <= MAX_WAIT_S):
        raise FieldError(field, f"{value!r} is not a number of seconds from 0 to {MAX_WAIT_S:g}")
    return value


def _checks(results: Sequence[CheckResult]) -> list[check_pb2.CheckResult]:
    return [r.to_proto() for r in results]


class ControlServicer(control_pb2_grpc.ControlServicer):
    def __init__(
        self,
        lifecycle: Lifecycle,
        status: StatusReporter,
        tasks: TaskRunner | None = None,
        config: ConfigStore | None = None,
        outbox: OutboxControl | None = None,
    ) -> None:
        self.lifecycle = lifecycle
        self.status = status
        self.tasks = tasks
        self.config = config
        self.outbox = outbox or OutboxControl(status.store)

    @rpc_errors
    def StartDeployment(self, request, context):
        deployment, checks = self.lifecycle.start(
            request.name,
            request.latitude if request.HasField("latitude") else None,
            request.longitude if request.HasField("longitude") else None,
            run_checks=not request.skip_checks,
        )
        return control_pb2.ControlStartDeploymentResponse(
            deployment=convert.deployment_to_proto(deployment), checks=_checks(checks)
        )

    @rpc_errors
    def StopDeployment(self, request, context):
        timeout_s = _wait_s(request.flush_timeout_s, "flush_timeout_s", 120.0)
        deployment, report = self.lifecycle.stop(timeout_s)
        return control_pb2.ControlStopDeploymentResponse(
            deployment=convert.deployment_to_proto(deployment),
            flush_steps=report.steps,
            flush_left=report.left,
        )

    @rpc_errors
    def GetStatus(self, request, context):
        return self.status.report()

    @rpc_errors
    def RunChecks(self, request, context):
        return control_pb2.RunChecksResponse(checks=_checks(self.lifecycle.checks()))

    def _tasks(self) -> TaskRunner:
        if self.tasks is None:
            raise FailedPreconditionError("this scheduler runs no program tasks")
        return self.tasks

    @rpc_errors
    def ListTasks(self, request, context):
        return control_pb2.ListTasksResponse(
            tasks=[
                control_pb2.TaskInfo(
                    name=e.name,
                    task=e.task,
                    queue=e.queue,
                    interval_s=e.interval_s,
                    offset_s=e.offset_s,
                )
                for e in self._tasks().list()
            ]
        )

    @rpc_errors
    def RunTask(self, request, context):
        task_id, queue, profile = self._tasks().run(
            request.name,
            profile=request.profile,
            profile_timeout_s=_wait_s(request.profile_timeout_s, "profile_timeout_s", 120.0),
        )
        return control_pb2.RunTaskResponse(
            task_id=task_id,
            queue=queue,
            profile_json=json.dumps(profile) if profile is not None else "",
        )

    def _config(self) -> ConfigStore:
        if self.config is None:
            raise FailedPreconditionError("this scheduler has no program configuration")
        return self.config

    @rpc_errors
    def GetConfig(self, request, context):
        config = self._config()
        return control_pb2.GetConfigResponse(
            value_json=json.dumps(config.get(request.field)),
            schema_json="" if request.field else json.dumps(config.schema()),
        )

    @rpc_errors
    def SetConfig(self, request, context):
        if request.changes:
            if request.field or request.value:
                raise InvalidArgumentError("changes: send either changes or field and value")
            changes = [(change.field, change.value) for change in request.changes]
            return control_pb2.SetConfigResponse(
                value_json=json.dumps(self._config().set_many(changes))
            )
        value = self._config().set(request.field, request.value)
        return control_pb2.SetConfigResponse(value_json=json.dumps(value))

    @rpc_errors
    def GetOutbox(self, request, context):
        return self.outbox.overview(request.dead_limit)

    @rpc_errors
    def RetryMessages(self, request, context):
        retried = self.outbox.retry(list(request.message_ids), all_dead=request.all_dead)
        return control_pb2.ControlRetryMessagesResponse(message_ids=retried)


def register(servicer: ControlServicer) -> Callable[[grpc.Server], str]:
    def add(server: grpc.Server) -> str:
        control_pb2_grpc.add_ControlServicer_to_server(servicer, server)
        return control_pb2.DESCRIPTOR.services_by_name["Control"].full_name

    return add
