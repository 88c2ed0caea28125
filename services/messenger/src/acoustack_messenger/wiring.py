"""The messenger's parts that run in processes: the Celery worker (in its spawned process, with
the prefork pool so that a send that hangs is stopped by the task's time limit) and the self-check
(in the gRPC process). `python -m acoustack_messenger` (``__main__``) puts them together.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from celery.signals import worker_process_shutdown

from acoustack.celery_app import create_app
from acoustack.errors import InvalidArgumentError
from acoustack.names import Queue
from acoustack.program_config import MessagingConfig, read_section
from acoustack.self_check import CheckResult
from acoustack.worker_process import run_prefork_worker
from acoustack_messenger.messengers import build_messengers
from acoustack_messenger.settings import MessengerSettings
from acoustack_messenger.tasks import MessengerContext, register_tasks

log = logging.getLogger("acoustack_messenger")


def run_worker(settings: MessengerSettings) -> int:
    """The Celery worker on queue `default`: prefork with one child, so the time limits are
    enforced. The context opens nothing until a task runs, so every channel and connection is
    made in the child, after the fork."""
    app = create_app(
        settings.broker_url,
        task_soft_time_limit_s=settings.task_soft_time_limit_s,
        task_time_limit_s=settings.task_time_limit_s,
    )
    context = MessengerContext(settings.storage_target, settings.data_dir)
    register_tasks(app, context)

    @worker_process_shutdown.connect(weak=False)
    def _close(**_kwargs: Any) -> None:
        # The MQTT disconnect asks the broker to publish the will: availability turns offline.
        context.close()

    return run_prefork_worker(app, Queue.DEFAULT, name="messenger", log_level=settings.log_level)


def self_check(program_config: Mapping[str, Any], device_id: str) -> list[CheckResult]:
    """One verdict per messenger the program's messaging section configures: can it reach its
    server now? Nothing is sent."""
    try:
        messaging = read_section(program_config, "messaging", MessagingConfig)
        messengers = build_messengers(messaging, device_id) if messaging is not None else []
    except InvalidArgumentError as exc:
        return [CheckResult("messaging", False, str(exc))]
    if not messengers:
        return [
            CheckResult("messaging", True, "no messenger configured: messages stay in the outbox")
        ]
    try:
        return [messenger.check() for messenger in messengers]
    finally:
        for messenger in messengers:
            messenger.close()
