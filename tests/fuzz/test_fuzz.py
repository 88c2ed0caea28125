"""Fuzz every RPC of every server we run (issue 16): no INTERNAL or UNKNOWN, no leaked internals,
no slow call, health SERVING afterwards, and every stored row still readable.

The short run (make test) is seeded and bounded; `make fuzz` runs a long one (see conftest.py)."""

from __future__ import annotations


def assert_clean(report) -> None:
    assert report.calls > 0
    assert not report.failures, f"{report.summary()}\n" + "\n".join(
        str(f) for f in report.failures[:20]
    )
    # Every RPC was called (the descriptors list them; a new one is fuzzed without a change here).
    assert all(report.by_method.values())


def test_the_store_survives_the_fuzzer(store_fuzz_target, run_fuzz):
    from acoustack.v1 import store_pb2
    from acoustack_storage.servicer import StoreServicer

    report = run_fuzz(store_fuzz_target(StoreServicer), short_run=3000)
    assert_clean(report)
    methods = store_pb2.DESCRIPTOR.services_by_name["Store"].methods
    assert len([m for m in report.by_method if m.startswith("acoustack.v1.Store.")]) == len(methods)


def test_the_detector_survives_the_fuzzer(detector_fuzz_target, run_fuzz):
    report = run_fuzz(detector_fuzz_target, short_run=1000)
    assert_clean(report)


def test_the_messenger_survives_the_fuzzer(messenger_fuzz_target, run_fuzz):
    report = run_fuzz(messenger_fuzz_target, short_run=600)
    assert_clean(report)


def test_the_scheduler_survives_the_fuzzer(scheduler_fuzz_target, run_fuzz):
    report = run_fuzz(scheduler_fuzz_target, short_run=800)
    assert_clean(report)
