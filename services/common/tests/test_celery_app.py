"""The shared Celery app on a real RabbitMQ vhost: tasks land in their queues, as JSON."""

from __future__ import annotations

import json

from acoustack.celery_app import create_app
from acoustack.names import TASK_QUEUES, Queue, Task


def test_each_task_lands_in_its_queue_as_json(rabbitmq):
    app = create_app(rabbitmq.url)
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for queue in Queue:
            app.amqp.queues[queue.value].bind(channel).declare()
            channel.queue_purge(queue.value)
        for task in Task:
            app.send_task(task.value, args=["00000000-0000-0000-0000-000000000001"])
        for task, queue in TASK_QUEUES.items():
            message = channel.basic_get(queue.value, no_ack=True)
            assert message is not None, f"{task} not in {queue}"
            assert message.content_type == "application/json"
            assert message.headers["task"] in {
                t.value for t, q in TASK_QUEUES.items() if q is queue
            }
            assert json.loads(message.body)[0] == ["00000000-0000-0000-0000-000000000001"]


def test_the_app_refuses_pickle_and_acknowledges_late():
    app = create_app("amqp://guest:guest@127.0.0.1:5672//")
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1
