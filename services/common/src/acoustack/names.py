"""Names every service agrees on: Celery tasks and queues, the event exchange and its routing keys.

Defined here once; no service spells one of these strings itself.
"""

from __future__ import annotations

from enum import StrEnum


class Queue(StrEnum):
    # Recording runs one at a time: a microphone is a single device.
    RECORDING = "recording"
    DETECTION = "detection"
    DEFAULT = "default"


class Task(StrEnum):
    RECORD = "acoustack.record"
    DETECT = "acoustack.detect"
    MANAGE_FILES = "acoustack.manage_files"
    SEND_MESSAGES = "acoustack.send_messages"
    SUMMARISE = "acoustack.summarise"
    HEARTBEAT = "acoustack.heartbeat"


TASK_QUEUES: dict[Task, Queue] = {
    Task.RECORD: Queue.RECORDING,
    Task.DETECT: Queue.DETECTION,
    Task.MANAGE_FILES: Queue.DEFAULT,
    Task.SEND_MESSAGES: Queue.DEFAULT,
    Task.SUMMARISE: Queue.DEFAULT,
    Task.HEARTBEAT: Queue.DEFAULT,
}

EVENTS_EXCHANGE = "acoustack.events"


class RoutingKey(StrEnum):
    DEPLOYMENT_STARTED = "deployment.started"
    DEPLOYMENT_ENDED = "deployment.ended"
