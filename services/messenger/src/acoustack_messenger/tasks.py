"""The messenger's Celery tasks on queue `default`, each run through its task template.

- ``acoustack.send_messages`` (``SendMessagesArguments``): sends up to ``messaging.max_per_run``
  due messages (``messaging.order``) through every configured messenger and stores each
  response, with the outcome of each try that had no success (its backoff, a dead letter);
- ``acoustack.heartbeat`` (``HeartbeatArguments``): device id, time, the device's status and
  metrics, sent straight through the messengers (not via the outbox: a late heartbeat says
  nothing);
- ``acoustack.summarise`` (``SummariseArguments``): a summary of the last ``summary.interval_s``
  of detections, put in the outbox.

Each reads its sections from ``program_config`` at every run, so a changed setting applies at the
next one. No messaging section, or neither ``http_url`` nor ``mqtt_host`` set: said once in the
log, messages stay in the outbox, the task succeeds. Storage unreachable: the task is retried
with backoff (until the scheduler's expiry drops it: the next run does the same work).
"""

from __future__ import annotations

import logging
import os
import time
from functools import partial
from pathlib import Path
from typing import Any

from celery import Celery

from acoustack import metrics
from acoustack.celery_app import register_task
from acoustack.clients import StoreClient
from acoustack.errors import UnavailableError
from acoustack.identity import LearnedIdentity
from acoustack.names import (
    HeartbeatArguments,
    SendMessagesArguments,
    SummariseArguments,
    Task,
)
from acoustack.program_config import MessagingConfig
from acoustack.tasks import (
    generate_heartbeat_task,
    generate_send_messages_task,
    generate_summariser_task,
)
from acoustack_messenger import device_status
from acoustack_messenger.delivery import Backoff
from acoustack_messenger.homeassistant import HomeAssistantDevice, HomeAssistantReporter
from acoustack_messenger.messengers import (
    DEFAULT_SECRETS_DIR,
    CheckableMessenger,
    MqttMessenger,
    availability_topic,
    build_messengers,
)
from acoustack_messenger.outbox import Outbox
from acoustack_messenger.summaries import DetectionSummariser

log = logging.getLogger(__name__)

# Time kept free at the end of a send run, beyond the slowest single send, before the soft limit.
RUN_MARGIN_S = 5.0
NO_MESSENGER = (
    "no messenger configured (messaging.http_url and messaging.mqtt_host are empty): "
    "messages stay in the outbox"
)
NO_MESSAGING = "the program has no messaging section: messages stay in the outbox"


class HeartbeatNotDelivered(Exception):
    """No messenger took the heartbeat; retried a few times, then left to the next one."""


class MessengerContext:
    """What the tasks share in one worker process.

    Made empty in the parent and filled on first use, so each pool process opens its own storage
    channel and broker connections after the fork (gRPC channels do not survive one). The
    messengers live as long as the messaging section is unchanged, so an MQTT connection is
    kept from run to run.
    """

    def __init__(
        self,
        storage_target: str,
        data_dir: Path,
        *,
        store: StoreClient | None = None,
        secrets_dir: Path = DEFAULT_SECRETS_DIR,
    ) -> None:
        self.storage_target = storage_target
        self.data_dir = Path(data_dir)
        self.secrets_dir = Path(secrets_dir)
        self._store = store
        self._store_pid = os.getpid() if store is not None else None
        self._identity: LearnedIdentity | None = None
        self._messengers: list[CheckableMessenger] = []
        self.home_assistant: HomeAssistantReporter | None = None
        self._messaging_key: str | None = None
        self._process_cpu: metrics.ProcessCpu | None = None
        self._said: set[str] = set()

    @property
    def store(self) -> StoreClient:
        if self._store is None or self._store_pid != os.getpid():
            self._store = StoreClient(self.storage_target)
            self._store_pid = os.getpid()
        return self._store

    @property
    def device_id(self) -> str:
        """Learned from storage, which owns it (kept in the data volume for its outages)."""
        if self._identity is None:
            self._identity = self.store.learned_identity(self.data_dir)
        return self._identity.get()

    def messengers(self, config: MessagingConfig) -> list[CheckableMessenger]:
        key = config.model_dump_json()
        if key != self._messaging_key:
            self.close_messengers()
            self._messengers = build_messengers(config, self.device_id, self.secrets_dir)
            previous, self.home_assistant = self.home_assistant, None
            mqtt = [m for m in self._messengers if isinstance(m, MqttMessenger)]
            if previous is not None and mqtt and not config.homeassistant_discovery:
                # Switched off: what was announced is taken back (an empty retained config
                # removes the entity from Home Assistant and the broker).
                for topic, _ in previous.device.discovery(previous.species):
                    mqtt[0].publish(topic, "")
            if mqtt and config.homeassistant_discovery:
                device = HomeAssistantDevice(
                    self.device_id,
                    config.mqtt_topic,
                    availability_topic(config, self.device_id),
                    config.homeassistant_prefix,
                )
                self.home_assistant = HomeAssistantReporter(self.store, mqtt[0], device)
            self._messaging_key = key
            self._said.discard(NO_MESSENGER)
        return self._messengers

    def heartbeat_metrics(self) -> list:
        if self._process_cpu is None:  # its baseline is this process's start of work
            self._process_cpu = metrics.ProcessCpu()
        return [
            partial(metrics.free_storage, self.data_dir),
            partial(metrics.used_storage, self.data_dir),
            metrics.free_memory,
            metrics.process_memory,
            self._process_cpu,
            partial(metrics.last_recording_age, self.store),
        ]

    def say_once(self, text: str) -> None:
        """Log a standing condition once per process, not at every run."""
        if text not in self._said:
            self._said.add(text)
            log.warning(text)

    def close_messengers(self) -> None:
        for messenger in self._messengers:
            try:
                messenger.close()
            except Exception:
                log.exception("closing %s", messenger.name)
        self._messengers, self._messaging_key = [], None

    def close(self) -> None:
        self.close_messengers()
        if self._store is not None and self._store_pid == os.getpid():
            self._store.close()
        self._store = None


def _messengers_for(
    context: MessengerContext, arguments: SendMessagesArguments | HeartbeatArguments
):
    """(messaging section, messengers), or None after saying why nothing can be sent."""
    messaging = arguments.messaging
    if messaging is None:
        context.say_once(NO_MESSAGING)
        return None
    messengers = context.messengers(messaging)
    if not messengers:
        context.say_once(NO_MESSENGER)
        return None
    return messaging, messengers


def _keep_going(report: Any, what: str) -> None:
    """Home Assistant's states are extras: storage away does not fail (nor repeat) the run."""
    try:
        report()
    except UnavailableError as exc:
        log.warning("%s not published: %s", what, exc)


def _run_deadline(task: Any, slowest_send_s: float) -> float | None:
    """When to stop starting sends: before the soft time limit, the slowest send and a margin."""
    limits = task.request.timelimit or (None, None)
    soft = limits[1] or task.soft_time_limit or task.app.conf.task_soft_time_limit
    if not soft:
        return None
    return time.monotonic() + max(0.0, float(soft) - slowest_send_s - RUN_MARGIN_S)


def register_tasks(app: Celery, context: MessengerContext) -> dict[str, Any]:
    """Add the three tasks to ``app``; returns them by name."""
    storage_retry = {
        "autoretry_for": (UnavailableError,),
        "retry_backoff": 2,
        "retry_backoff_max": 300,
        "retry_jitter": True,
        "max_retries": None,
    }

    def send_messages(task: Any, arguments: SendMessagesArguments) -> dict[str, Any]:
        found = _messengers_for(context, arguments)
        if found is None:
            return {"responses": {}, "stopped_early": "nothing to send with"}
        messaging, messengers = found
        outbox = Outbox(
            context.store,
            limit=messaging.max_per_run,
            newest_first=messaging.order == "newest-first",
            messengers=len(messengers),
            deadline=_run_deadline(task, max(messaging.http_timeout_s, messaging.mqtt_timeout_s)),
            backoff=Backoff.of(messaging),
        )
        generate_send_messages_task(outbox, messengers, logger=log)()
        if outbox.statuses:
            log.info("send_messages: responses %s", dict(outbox.statuses))
        if context.home_assistant is not None:
            _keep_going(context.home_assistant.report_detections, "Home Assistant's detections")
        return {
            "responses": dict(outbox.statuses),
            "stopped_early": outbox.stopped_early,
            "dead_letters": outbox.dead_letters,
        }

    def heartbeat(task: Any, arguments: HeartbeatArguments) -> dict[str, Any]:
        found = _messengers_for(context, arguments)
        if found is None:
            return {"sent": False}
        _, messengers = found
        report = device_status.Assessment(context.store, app, arguments.program_config)
        send = generate_heartbeat_task(
            messengers,
            metrics=[*context.heartbeat_metrics(), *report.metrics()],
            logger=log,
            device_id=lambda: context.device_id,
            status=report.status,
            deployment=report.deployment,
        )
        try:
            send()
        except RuntimeError as exc:
            raise HeartbeatNotDelivered(str(exc)) from exc
        status = report.status()
        if context.home_assistant is not None:
            reporter = context.home_assistant

            def diagnostics() -> None:
                counts = context.store.count_messages()
                reporter.report_diagnostics(
                    status,
                    metrics.free_storage(context.data_dir).value,
                    metrics.last_recording_age(context.store).value,
                    counts.due + counts.backing_off,
                )

            _keep_going(diagnostics, "Home Assistant's diagnostics")
        return {"sent": True, "status": status}

    def summarise(task: Any, arguments: SummariseArguments) -> dict[str, Any]:
        summary = arguments.summary
        if summary is None:
            context.say_once("the program has no summary section: no summaries are made")
            return {"messages": []}
        summariser = DetectionSummariser(
            context.store, summary.interval_s, context.device_id, tag_key=summary.tag_key
        )
        outbox = Outbox(context.store)
        generate_summariser_task([summariser], outbox, logger=log)()
        return {"messages": outbox.stored}

    return {
        "send_messages": register_task(app, Task.SEND_MESSAGES, send_messages, **storage_retry),
        "heartbeat": register_task(
            app,
            Task.HEARTBEAT,
            heartbeat,
            autoretry_for=(HeartbeatNotDelivered, UnavailableError),
            retry_backoff=5,
            retry_backoff_max=120,
            retry_jitter=True,
            max_retries=3,
        ),
        "summarise": register_task(app, Task.SUMMARISE, summarise, **storage_retry),
    }
