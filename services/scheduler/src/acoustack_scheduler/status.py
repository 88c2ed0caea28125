"""What `acoustack status` shows: the program, the deployment, each service's health, the queues,
the last recording and detection, the outbox, free disk."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acoustack import schema
from acoustack.clients import StoreClient
from acoustack.device_facts import judge
from acoustack.healthcheck import check
from acoustack.v1 import control_pb2, store_pb2


@dataclass
class StatusReporter:
    program: str
    store: StoreClient
    services: Mapping[str, str]  # name → host:port of its gRPC health service
    queue_stats: Callable[[], Mapping[str, tuple[int, int]]]  # name → (waiting, workers)
    disk_path: Path = Path("/")
    # queue → the fewest worker processes the program needs there (Program.workers)
    expected_workers: Callable[[], Mapping[str, int]] = dict
    health_timeout_s: float = 2.0
    # The program configuration now: its recording windows decide whether silence is a problem.
    program_config: Callable[[], Mapping[str, Any] | None] = lambda: None

    def report(self) -> control_pb2.GetStatusResponse:
        reply = control_pb2.GetStatusResponse(program=self.program)
        reply.device_id = self.store.device_id()
        current = self.store.current_deployment()
        if current is not None:
            reply.deployment.CopyFrom(current)
        for name, target in sorted(self.services.items()):
            _ok, text = check(target, timeout_s=self.health_timeout_s)
            reply.services.add(name=name, target=target, health=text.removeprefix(f"{target}: "))
        try:
            stats = self.queue_stats()
        except Exception as exc:  # the broker being down is itself the status to show
            reply.queues.add(name=f"unavailable: {exc}", waiting=-1, workers=-1)
        else:
            expected = self.expected_workers()
            for name, (waiting, workers) in sorted(stats.items()):
                reply.queues.add(
                    name=name,
                    waiting=waiting,
                    workers=workers,
                    expected_workers=expected.get(name, 0),
                )
        newest = self.store.list_recordings(
            order=store_pb2.SORT_ORDER_NEWEST_FIRST, limit=1, include_model_outputs=True
        )
        if newest:
            reply.last_recording.CopyFrom(newest[0].recording)
        hits = self.store.list_detections(order=store_pb2.SORT_ORDER_NEWEST_FIRST, limit=1)
        if hits:
            entry = self.store.get_recording(hits[0].recording_id, include_model_outputs=True)
            for output in entry.model_outputs:
                if output.id == hits[0].model_output_id:
                    reply.last_model_output.CopyFrom(output)
        reply.outbox.CopyFrom(self.store.count_messages())
        reply.unsent_messages = reply.outbox.due + reply.outbox.backing_off + reply.outbox.dead
        sent = self.store.list_responses(status=schema.ResponseStatus.SUCCESS, limit=1)
        if sent:
            reply.last_message_sent.CopyFrom(sent[0])
        try:
            reply.free_disk_gb = shutil.disk_usage(self.disk_path).free / 1e9
        except OSError:
            reply.free_disk_gb = -1
        retention = self.store.retention()
        if retention is not None:
            reply.retention.CopyFrom(retention)
        reply.device_status, _ = judge(self.store, self.queue_stats, self.program_config())
        return reply
