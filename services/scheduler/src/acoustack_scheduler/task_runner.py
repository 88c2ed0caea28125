"""`task list` and `task run`: the program's periodic tasks, and sending one now."""

from __future__ import annotations

from dataclasses import dataclass

from celery import Celery

from acoustack.errors import NotFoundError
from acoustack.names import TASK_QUEUES
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
    config: Section

    def list(self) -> list[TaskEntry]:
        return [
            TaskEntry(name, task.value, TASK_QUEUES[task].value, interval, offset)
            for name, (task, interval, offset) in self.program.periodic_tasks(self.config).items()
        ]

    def run(self, name: str) -> tuple[str, str]:
        """Send the task now (outside its schedule); returns its id and queue."""
        for entry in self.list():
            if name in (entry.name, entry.task):
                result = self.app.send_task(entry.task)
                return result.id, entry.queue
        names = ", ".join(e.name for e in self.list())
        raise NotFoundError(
            f"name: no task {name!r} in program {self.program.name} (tasks: {names})"
        )
