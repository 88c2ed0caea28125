"""What the heartbeat says of the device: the facts (``acoustack.device_facts``) judged by
``acoustack.device_health``, as the heartbeat's status and a few more metrics.

A fact that cannot be gathered is itself reported ("storage unreachable"), and the heartbeat still
goes: a heartbeat that waits for everything to work says nothing when it matters.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from celery import Celery

from acoustack import schema
from acoustack.celery_app import queue_stats
from acoustack.clients import StoreClient
from acoustack.device_facts import judge

log = logging.getLogger(__name__)


class Assessment:
    """The device judged once for one heartbeat: its status and the metrics of what was found
    (failures, waiting tasks), both made on first use from the same facts."""

    def __init__(
        self,
        store: StoreClient,
        app: Celery | None,
        program_config: Mapping[str, Any] | None,
        now: dt.datetime | None = None,
    ) -> None:
        self._judge = partial(
            judge, store, None if app is None else partial(queue_stats, app), program_config, now
        )
        self._judged: tuple[str, Any] | None = None

    def _facts(self) -> tuple[str, Any]:
        if self._judged is None:
            self._judged = self._judge()
            if self._judged[0] != "ok":
                log.warning("heartbeat: %s", self._judged[0])
        return self._judged

    def status(self) -> str:
        return self._facts()[0]

    def deployment(self) -> schema.HeartbeatDeployment | None:
        """The current deployment, from the same facts (no second question to storage)."""
        current = self._facts()[1].deployment
        if current is None:
            return None
        return schema.HeartbeatDeployment(
            id=current.id,
            name=current.name,
            latitude=current.latitude,
            longitude=current.longitude,
        )

    def metrics(self) -> list[Callable[[], schema.Metric]]:
        """Collected when the heartbeat is built, like the template's other metrics."""
        return [
            self._metric("failed_recordings_last_hour", lambda facts: facts.failed_last_hour),
            # What retention deleted to keep the card from filling (-1: it has not run yet).
            self._metric(
                "recordings_deleted_for_space_last_day",
                lambda facts: -1 if facts.retention is None else facts.retention.deleted_for_space,
            ),
            self._metric(
                "recordings_deleted_for_age_last_day",
                lambda facts: -1 if facts.retention is None else facts.retention.deleted_for_age,
            ),
            *(
                self._metric(
                    f"queue_{name}_waiting", lambda facts, name=name: facts.queues[name].waiting
                )
                for name in sorted(self._facts()[1].queues)
            ),
        ]

    def _metric(self, name: str, value: Callable[[Any], float]) -> Callable[[], schema.Metric]:
        def collect() -> schema.Metric:
            return schema.Metric(name=name, value=float(value(self._facts()[1])), unit="count")

        collect.__name__ = name
        return collect
