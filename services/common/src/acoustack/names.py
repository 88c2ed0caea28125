"""Names every service agrees on: Celery tasks and queues, the event exchange and its routing keys.

Defined here once; no service spells one of these strings itself.
"""

from __future__ import annotations

from enum import StrEnum


class Queue(StrEnum):
    # Recording runs one at a time: a microphone is a single device.
    RECORDING = "recording"
    DETECTION = "detection"
    # File management: storage's worker, which owns the recordings' final places.
    FILES = "files"
    # Messaging, summaries and heartbeats: the messenger's worker.
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
    Task.MANAGE_FILES: Queue.FILES,
    Task.SEND_MESSAGES: Queue.DEFAULT,
    Task.SUMMARISE: Queue.DEFAULT,
    Task.HEARTBEAT: Queue.DEFAULT,
}

EVENTS_EXCHANGE = "acoustack.events"


class RoutingKey(StrEnum):
    DEPLOYMENT_STARTED = "deployment.started"
    DEPLOYMENT_ENDED = "deployment.ended"


# A task sent with this header is run under the profiler; the worker sends the profile to the
# queue the header names (`acoustack task run NAME --profile`).
PROFILE_REPLY_HEADER = "acoustack_profile_reply_to"
PROFILE_QUEUE_PREFIX = "acoustack.profile."
