"""The fuzzer catches what it is for: each deliberately broken store below, over a real database,
is reported with the failure it has; the real store is not (test_fuzz.py)."""

from __future__ import annotations

import time
import traceback

import grpc
import pytest
from acoustack_fuzzer import Fuzzer, fuzz

from acoustack.v1 import store_pb2
from acoustack_storage.servicer import StoreServicer


class RawExceptionStore(StoreServicer):
    """A path with a control character makes it raise a bare exception (which grpcio alone
    would answer UNKNOWN, with the exception's text)."""

    def GetRecordingsByPath(self, request, context):
        if any(ord(c) < 32 for path in request.paths for c in path):
            raise KeyError(request.paths[0])
        return super().GetRecordingsByPath(request, context)


class CommitsBadRows(StoreServicer):
    """Moves a recording without checking the path (what UpdateRecordingPath did before)."""

    def UpdateRecordingPath(self, request, context):
        with self.store.connection() as conn:
            conn.execute(
                "UPDATE recordings SET path = %s WHERE id = %s",
                (request.path.replace("\x00", ""), request.recording_id),
            )
        return store_pb2.UpdateRecordingPathResponse()


class LeaksTracebacks(StoreServicer):
    def GetDeployment(self, request, context):
        try:
            return super().GetDeployment(request, context)
        except Exception:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, traceback.format_exc())


class EchoesWhole(StoreServicer):
    def GetDeployment(self, request, context):
        context.abort(grpc.StatusCode.NOT_FOUND, f"no deployment {request.deployment_id}")


class Slow(StoreServicer):
    def GetCurrentDeployment(self, request, context):
        time.sleep(1.2)
        return super().GetCurrentDeployment(request, context)


class GoesDown(StoreServicer):
    """Turns its health NOT_SERVING once a message is not a JSON object (``running``: its server,
    set as it starts)."""

    running = None

    def StoreMessage(self, request, context):
        if not request.message.content.startswith("{"):
            self.running.set_serving(False)
        return super().StoreMessage(request, context)


@pytest.mark.parametrize(
    ("servicer", "kinds", "method"),
    [
        (RawExceptionStore, {"INTERNAL"}, "acoustack.v1.Store.GetRecordingsByPath"),
        # Seen as a read that fails during the run, or at a checkpoint's read-back.
        (CommitsBadRows, {"DATA_LOSS", "readback"}, None),
        (LeaksTracebacks, {"leak"}, "acoustack.v1.Store.GetDeployment"),
        (EchoesWhole, {"details too large"}, "acoustack.v1.Store.GetDeployment"),
        (Slow, {"slow"}, "acoustack.v1.Store.GetCurrentDeployment"),
        (GoesDown, {"health"}, None),
    ],
    ids=[
        "raw exception",
        "commits bad rows",
        "leaks tracebacks",
        "echoes whole",
        "slow",
        "goes down",
    ],
)
def test_the_fuzzer_reports_a_broken_store(store_fuzz_target, servicer, kinds, method):
    calls = 60 if servicer is Slow else 1500  # each of its slow calls takes a second
    report = fuzz(store_fuzz_target(servicer), seed=16, calls=calls, seconds=30, call_bound_s=1.0)
    found = [f for f in report.failures if f.kind in kinds]
    assert found, f"{report.summary()}: no {kinds} failure among {report.failures[:5]}"
    if method is not None:
        assert {f.method for f in found} == {method}
    if servicer is CommitsBadRows:
        assert any("cannot be read back" in f.detail for f in found), found[:3]


def test_the_real_store_gives_none_of_those(store_fuzz_target):
    report = fuzz(
        store_fuzz_target(StoreServicer), seed=16, calls=600, seconds=30, call_bound_s=1.0
    )
    assert report.failures == []


def test_the_same_seed_sends_the_same_requests(store_fuzz_target):
    target = store_fuzz_target(StoreServicer)
    target.seeds = {k: [s for s in v if not callable(s)] for k, v in target.seeds.items()}

    def requests(seed: int) -> list[bytes]:
        fuzzer = Fuzzer(target, seed=seed, max_calls=0, max_seconds=0)
        made = []
        for i in range(300):
            request = fuzzer._request(fuzzer.methods[i % len(fuzzer.methods)])
            made.append(request if isinstance(request, bytes) else request.SerializeToString())
        return made

    assert requests(7) == requests(7)
    assert requests(7) != requests(8)


def test_every_rpc_needs_a_valid_request_to_start_from(store_fuzz_target):
    target = store_fuzz_target(StoreServicer)
    del target.seeds["acoustack.v1.Store.ListDetections"]
    report = fuzz(target, seed=1, calls=40, seconds=10, call_bound_s=1.0)
    assert [(f.method, f.kind) for f in report.failures] == [
        ("acoustack.v1.Store.ListDetections", "no seed")
    ]
    assert report.by_method["acoustack.v1.Store.ListDetections"] > 0  # fuzzed from empty anyway
