"""The deployment lifecycle: start (checks first; a failed start rolls back), stop (flush first),
status. Domain logic: the store, the checks, the flush and the announcement are passed in.

One deployment is active at a time (the store enforces it). Starting runs the checks unless told
not to; a failing check leaves everything as it was. After the store has the deployment, the start
is announced (the event exchange); if that fails the deployment is ended again, so a half-started
device never records under a deployment nobody was told about. Stopping first pauses new
recordings, then flushes the work in flight (detection of the last recordings, file management,
the outbox), then ends the deployment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from acoustack import convert, schema
from acoustack.clients import StoreClient
from acoustack.errors import FailedPreconditionError, InvalidArgumentError, validation_message
from acoustack.names import RoutingKey
from acoustack.self_check import CheckResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlushReport:
    steps: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)  # what could not be finished in time

    @property
    def complete(self) -> bool:
        return not self.left


class Flusher:
    """Finishes the work in flight; the default does nothing (a program without queues)."""

    def flush(self, deployment: schema.Deployment, timeout_s: float) -> FlushReport:
        return FlushReport()


@dataclass
class Lifecycle:
    store: StoreClient
    checks: Callable[[], Sequence[CheckResult]] = lambda: []
    flusher: Flusher = field(default_factory=Flusher)
    announce: Callable[[str, schema.Deployment], None] = lambda event, deployment: None
    # Stop scheduling new recordings while a deployment is being stopped, so nothing is recorded
    # after the flush has looked; resumed once the deployment has ended.
    pause_recording: Callable[[], None] = lambda: None
    resume_recording: Callable[[], None] = lambda: None
    # Told the active deployment after each start and stop (the beat sends it with each slot).
    on_deployment: Callable[[schema.Deployment | None], None] = lambda deployment: None

    def current(self) -> schema.Deployment | None:
        found = self.store.current_deployment()
        return convert.deployment_from_proto(found) if found is not None else None

    def start(
        self,
        name: str,
        latitude: float | None,
        longitude: float | None,
        *,
        run_checks: bool = True,
    ) -> tuple[schema.Deployment, list[CheckResult]]:
        active = self.current()
        if active is not None:
            raise FailedPreconditionError(
                f"deployment '{active.name}' is active since {active.started_at:%Y-%m-%d %H:%M} UTC",
                help="stop it first (acoustack deployment stop): one deployment at a time",
            )
        # Validate the values before anything runs, so a typo fails at once with the field's name.
        try:
            candidate = schema.Deployment(name=name, latitude=latitude, longitude=longitude)
        except ValidationError as exc:
            raise InvalidArgumentError(validation_message(exc, "")) from None
        results = list(self.checks()) if run_checks else []
        failed = [r for r in results if not r.ok]
        if failed:
            listed = "; ".join(f"{r.component}: {r.detail}" for r in failed)
            raise FailedPreconditionError(
                f"checks failed, nothing started: {listed}",
                help="fix them, or start with --skip-checks to deploy anyway",
            )
        started = convert.deployment_from_proto(
            self.store.start_deployment(
                candidate.name, candidate.latitude, candidate.longitude, deployment_id=candidate.id
            )
        )
        try:
            self.announce(RoutingKey.DEPLOYMENT_STARTED, started)
        except Exception as exc:
            log.error(
                "announcing deployment %s failed (%s): rolling the start back", started.name, exc
            )
            self.store.end_deployment(started.id)
            raise FailedPreconditionError(
                f"the deployment could not be announced ({exc}); the start was rolled back",
                help="check that RabbitMQ is running, then start again",
            ) from None
        self.on_deployment(started)
        return started, results

    def stop(self, timeout_s: float = 120.0) -> tuple[schema.Deployment, FlushReport]:
        active = self.current()
        if active is None:
            raise FailedPreconditionError(
                "no deployment is active", help="start one: acoustack deployment start"
            )
        self.pause_recording()
        try:
            report = self.flusher.flush(active, timeout_s)
            if not report.complete:
                log.warning("stopping %s with work left: %s", active.name, "; ".join(report.left))
            ended = convert.deployment_from_proto(self.store.end_deployment(active.id))
            self.on_deployment(None)
        finally:
            self.resume_recording()
        try:
            self.announce(RoutingKey.DEPLOYMENT_ENDED, ended)
        except Exception as exc:  # the deployment is over either way; say so in the log
            log.warning("announcing the end of %s failed: %s", ended.name, exc)
        return ended, report
