"""The messenger's parts, built from its settings: the Celery worker (this service's main process,
with the prefork pool so that a send that hangs is stopped by the task's time limit) and, in its
pool child, the sends themselves and the gRPC server (health, and the self-check: ``checks``).
`python -m acoustack_messenger` (``__main__``) starts the worker.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_process_shutdown

from acoustack import self_check as self_check_service
from acoustack.celery_app import create_app
from acoustack.clients import StoreClient
from acoustack.grpc_server import RunningServer, start_server
from acoustack.names import Queue
from acoustack.worker_process import (
    pool_children_die_with_parent,
    run_prefork_worker,
    serve_from_pool_child,
)
from acoustack_messenger.checks import self_check
from acoustack_messenger.settings import MessengerSettings
from acoustack_messenger.tasks import MessengerContext, register_tasks

log = logging.getLogger("acoustack_messenger")


def serve_grpc(settings: MessengerSettings) -> RunningServer:
    """In the pool child: health, and SelfCheck (can each configured messenger reach its
    server), with the device id learned from storage, which owns it."""
    identity = StoreClient(settings.storage_target).learned_identity(settings.data_dir)
    server = start_server(
        [
            self_check_service.register(
                lambda config: self_check(config, identity.get, settings.secrets_dir)
            )
        ],
        address=f"{settings.grpc_host}:{settings.grpc_port}",
        max_workers=4,
    )
    log.info("gRPC (health, SelfCheck) on port %d", server.port)
    return server


def run_worker(settings: MessengerSettings) -> int:
    """The Celery worker on queue `default`, in this process: prefork with one child, so the time
    limits are enforced. The context opens nothing until a task runs, so every channel and
    connection is made in the child, after the fork; the child serves gRPC too."""
    pool_children_die_with_parent()
    serve_from_pool_child(lambda: serve_grpc(settings))
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
