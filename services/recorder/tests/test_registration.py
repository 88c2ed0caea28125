"""The registrar's own rules: the backlog holds a slot back only while nothing is down; the two
stages keep the recording order; a hand-over that fails is retried without storing again."""

from __future__ import annotations

import threading
import time

from acoustack.errors import UnavailableError
from acoustack_recorder.registration import Registrar, Registration


def wait_until(condition, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_an_overloaded_pipeline_holds_the_next_slot_back():
    release, done = threading.Event(), []

    def registration(i):
        return Registration(f"r{i}", lambda: (release.wait(10), done.append(i)))

    registrar = Registrar(high_water=2, max_wait_s=30)
    registrar.submit(registration(0))
    registrar.submit(registration(1))
    third = threading.Thread(target=registrar.submit, args=(registration(2),))
    third.start()
    third.join(0.5)
    assert third.is_alive()  # two pending: the slot waits for the backlog to shrink
    release.set()
    third.join(10)
    assert not third.is_alive()
    assert registrar.drain(10) == 0
    assert done == [0, 1, 2]
    registrar.close()


def test_during_an_outage_slots_never_wait():
    up = threading.Event()

    def run():
        if not up.is_set():
            raise UnavailableError("storage: connection refused")

    registrar = Registrar(high_water=1, max_wait_s=600, initial_backoff_s=0.01, max_backoff_s=0.05)
    registrar.submit(Registration("r0", run))
    wait_until(lambda: registrar.in_outage)
    more = threading.Thread(
        target=lambda: [registrar.submit(Registration(f"r{i}", run)) for i in range(1, 4)]
    )
    more.start()
    more.join(10)
    assert not more.is_alive()  # not held back: the backlog is the outage's, not overload
    assert registrar.pending == 4
    up.set()
    assert registrar.drain(10) == 0
    assert not registrar.in_outage
    registrar.close()


def test_the_hand_over_is_retried_on_its_own_and_order_is_kept():
    broker_up = threading.Event()
    stored, handed = [], []

    def hand_over(i):
        if not broker_up.is_set():
            raise ConnectionError("broker: connection refused")
        handed.append(i)

    registrar = Registrar(initial_backoff_s=0.01, max_backoff_s=0.05)
    for i in range(3):
        registrar.submit(
            Registration(f"r{i}", lambda i=i: stored.append(i), then=lambda i=i: hand_over(i))
        )
    wait_until(lambda: stored == [0, 1, 2])  # storage took them all while the broker was down
    time.sleep(0.5)  # many failed hand-overs: an outage of the broker is waited out, not given up
    broker_up.set()
    assert registrar.drain(10) == 0
    assert handed == [0, 1, 2]
    assert stored == [0, 1, 2]  # nothing stored twice
    registrar.close()
