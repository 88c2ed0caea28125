"""Counts what arrives on an MQTT topic, in a process of its own (so receiving does not take the
measured process's time): prints "ready" once subscribed, then the count when COUNT have arrived
or TIMEOUT_S passed since the last one (before the first: up to FIRST_WAIT_S, as the sender may
still be filling its outbox).

    python count_arrivals.py HOST PORT TOPIC COUNT TIMEOUT_S
"""

from __future__ import annotations

import sys
import threading
import time

from paho.mqtt import client as mqtt

FIRST_WAIT_S = 600.0


def main() -> None:
    host, port, topic = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    expected, timeout_s = int(sys.argv[4]), float(sys.argv[5])
    arrived = [0]
    last = [time.monotonic()]
    ready, done = threading.Event(), threading.Event()

    def on_message(*_args) -> None:
        arrived[0] += 1
        last[0] = time.monotonic()
        if arrived[0] >= expected:
            done.set()

    # MQTT 3.1.1: the broker then leaves each message's v5 properties out, which paho decoded
    # into objects per message (Properties.unpack was most of this process's CPU, on the same two
    # cores as the sender, its storage, Postgres and Mosquitto). Only a count is needed here.
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    # QoS 0: Mosquitto queues at most max_queued_messages (1000) QoS 1 messages for a subscriber
    # and drops the rest, which a counter starved of CPU on a loaded machine made it do; QoS 0
    # messages go straight out to a connected subscriber.
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=0)
    client.on_subscribe = lambda *_: ready.set()
    client.on_message = on_message
    client.connect(host, port)
    client.loop_start()
    if not ready.wait(10):
        raise SystemExit(f"could not subscribe to {topic} on {host}:{port}")
    print("ready", flush=True)
    while not done.wait(0.2):
        idle = time.monotonic() - last[0]
        if idle > (timeout_s if arrived[0] else FIRST_WAIT_S):
            break
    client.disconnect()
    client.loop_stop()
    print(arrived[0], flush=True)


if __name__ == "__main__":
    main()
