"""The messenger's parts, built from its settings: the Celery worker (in its spawned process, with
the prefork pool so that a send that hangs is stopped by the task's time limit). The gRPC process
serves the self-check (``checks``). `python -m acoustack_messenger` (``__main__``) puts them
together.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_process_shutdown

from acoustack.celery_app import create_app
from acoustack.names import Queue
from acoustack.worker_process import run_prefork_worker
from acoustack_messenger.settings import MessengerSettings
from acoustack_messenger.tasks import MessengerContext, register_tasks

log = logging.getLogger("acoustack_messenger")


def run_worker(settings: MessengerSettings) -> int:
    """The Celery worker on queue `default`: prefork with one child, so the time limits are
    enforced. The context opens nothing until a task runs, so every channel and connection is
    made in the child, after the fork."""
    app = create_app(settings.broker_url)
    context = MessengerContext(
        settings.storage_target, settings.data_dir, secrets_dir=settings.secrets_dir
    )
    register_tasks(app, context)

    @worker_process_shutdown.connect(weak=False)
    def _close(**_kwargs: Any) -> None:
        # The MQTT disconnect asks the broker to publish the will: availability turns offline.
        context.close()

    return run_prefork_worker(app, Queue.DEFAULT, name="messenger", log_level=settings.log_level)
