"""The reference side of the messenger benchmark: acoupi 0.8's own MQTT messenger, draining its
own outbox (its SqliteMessageStore) through its own send task template.

Runs inside bench/messenger/.venv-acoupi (run.py creates it), never in the workspace venv:
    .venv-acoupi/bin/python reference_acoupi.py COUNT HOST PORT TOPIC
prints one JSON object on stdout: acoupi's version, the messages sent and the seconds the drain
took. Progress goes to stderr.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import types
from importlib.metadata import version
from pathlib import Path


def _install_pyaudio_stub() -> None:
    """acoupi.components imports its audio recorders, which import PyAudio (no Linux wheel);
    run.py installs acoupi without it, and messaging never records."""
    stub = types.ModuleType("pyaudio")
    stub.paInt16 = 8
    stub.PyAudio = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no audio here"))
    sys.modules.setdefault("pyaudio", stub)


def main() -> None:
    count, host, port, topic = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    _install_pyaudio_stub()
    from acoupi import data
    from acoupi.components.message_stores.sqlite import SqliteMessageStore
    from acoupi.components.messengers import MQTTMessenger
    from acoupi.tasks.messaging import generate_send_messages_task

    with tempfile.TemporaryDirectory() as folder:
        store = SqliteMessageStore(Path(folder) / "messages.db")
        for n in range(count):
            store.store_message(data.Message(content=json.dumps({"n": n, "bench": "acoupi"})))
        messenger = MQTTMessenger(host=host, port=port, topic=topic, timeout=10)
        task = generate_send_messages_task(store, [messenger])
        started = time.perf_counter()
        task()
        elapsed = time.perf_counter() - started
        left = len(store.get_unsent_messages())
    print(json.dumps({"version": version("acoupi"), "sent": count - left, "seconds": elapsed}))


if __name__ == "__main__":
    main()
