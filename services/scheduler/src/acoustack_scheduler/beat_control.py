"""What the running beat sends: the program's schedule for the current configuration, with the
active deployment in every `record` task, minus the entries paused during a stop.

The scheduler owns the deployment lifecycle, so it tells the recorder which deployment a slot
belongs to: the recorder needs no storage call per slot and keeps recording through a storage
outage even right after its own restart. While the scheduler does not know (storage did not answer
at its start), `record` goes without it and the recorder asks storage, as a task sent by hand does.

Domain logic: the beat itself is reached through ``push`` (the schedule to run, and the names to
drop), so this is tested without one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from acoustack import schema
from acoustack.names import Task
from acoustack_scheduler.programs import Program, Section

log = logging.getLogger(__name__)

Schedule = dict[str, dict[str, Any]]


class Unknown:
    """The active deployment is not known yet."""


UNKNOWN = Unknown()


def record_arguments(deployment: schema.Deployment | None) -> dict[str, Any]:
    """The `record` task's say on the deployment (None: there is none, so nothing is recorded);
    for ``RecordArguments``."""
    return {"deployment": deployment}


class BeatControl:
    def __init__(
        self,
        program: Program,
        config: Section,
        push: Callable[[Schedule, set[str]], None],
        deployment: schema.Deployment | Unknown | None = UNKNOWN,
    ) -> None:
        self.program = program
        self._config = config
        self._deployment = deployment
        self._paused: set[str] = set()
        self._push = push
        self._lock = threading.Lock()

    @property
    def config(self) -> Section:
        return self._config

    @property
    def deployment_known(self) -> bool:
        return not isinstance(self._deployment, Unknown)

    def schedule(self) -> Schedule:
        """The entries the beat should run now."""
        entries = self.program.beat_schedule(self._config, self.task_arguments)
        for name in self._paused:
            entries.pop(name, None)
        return entries

    def task_arguments(self, task: Task) -> dict[str, Any]:
        """What the scheduler adds to a task of the program, beside its configuration."""
        if task is Task.RECORD and self.deployment_known:
            return record_arguments(self._deployment)  # type: ignore[arg-type]
        return {}

    def _apply(self) -> None:
        # The paused entries are dropped from the running beat; dropping one it lacks is harmless.
        self._push(self.schedule(), set(self._paused))

    def set_config(self, config: Section) -> None:
        with self._lock:
            self._config = config
            self._apply()
        log.info("configuration changed; schedule: %s", ", ".join(self.schedule()))

    def set_deployment(self, deployment: schema.Deployment | None) -> None:
        with self._lock:
            self._deployment = deployment
            self._apply()
        log.info(
            "record tasks now go with deployment %s", deployment.name if deployment else "none"
        )

    def learned_deployment(self, deployment: schema.Deployment | None) -> None:
        """What storage said at the scheduler's start; a start or stop since then knows better."""
        with self._lock:
            if self.deployment_known:
                return
            self._deployment = deployment
            self._apply()
        log.info("active deployment: %s", deployment.name if deployment else "none")

    def pause(self, name: str) -> None:
        with self._lock:
            self._paused.add(name)
            self._apply()
        log.info("%s paused", name)

    def resume(self, name: str) -> None:
        with self._lock:
            self._paused.discard(name)
            self._apply()
        log.info("%s resumed", name)
