"""`task list` and `task run`: the program's periodic tasks, and sending one now."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import Celery

from acoustack import profiling
from acoustack.errors import FailedPreconditionError, NotFoundError, quote
from acoustack.names import PROFILE_REPLY_HEADER, TASK_QUEUES, Task
from acoustack_scheduler.programs import Program, Section


@dataclass(frozen=True)
class TaskEntry:
    name: str
    task: str
    queue: str
    interval_s: float
    offset_s: float


@dataclass
class TaskRunner:
    app: Celery
    program: Program
    current_config: Callable[[], Section]
    # What the scheduler adds beside the configuration (the deployment, for `record`).
    extra_arguments: Callable[[Task], dict[str, Any]] = lambda task: {}

    @property
    def config(self) -> Section:
        return self.current_config()

    def list(self) -> list[TaskEntry]:
        return [
            TaskEntry(name, task.value, TASK_QUEUES[task].value, interval, offset)
            for name, (task, interval, offset) in self.program.periodic_tasks(self.config).items()
        ]

    def run(
        self, name: str, *, profile: bool = False, profile_timeout_s: float = 120.0
    ) -> tuple[str, str, dict[str, Any] | None]:
        """Send the task now (outside its schedule); returns its id, its queue and, when asked
        for, the profile of the run (waiting for it at most ``profile_timeout_s``)."""
        for entry in self.list():
            if name in (entry.name, entry.task):
                task = Task(entry.task)
                arguments = self.program.send_arguments(
                    self.config, task, **self.extra_arguments(task)
                )
                if not profile:
                    return self.app.send_task(entry.task, **arguments).id, entry.queue, None
                with profiling.profile_reply_queue(self.app) as (reply_to, wait):
                    result = self.app.send_task(
                        entry.task, headers={PROFILE_REPLY_HEADER: reply_to}, **arguments
                    )
                    try:
                        report = wait(profile_timeout_s)
                    except profiling.ProfileTimeout as exc:
                        raise FailedPreconditionError(
                            f"{entry.name}: {exc} (task {result.id} on queue {entry.queue})",
                            help=f"is a worker taking queue {entry.queue}? `acoustack status` "
                            "shows the workers; a longer task needs --timeout",
                        ) from None
                return result.id, entry.queue, report
        names = ", ".join(e.name for e in self.list())
        raise NotFoundError(
            f"name: no task {quote(name)} in program {self.program.name} (tasks: {names})"
        )
