"""Failures a device meets: the database goes away and comes back; the storage service restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from acoustack.clients import RetryPolicy, StoreClient
from acoustack.errors import UnavailableError
from acoustack.grpc_server import start_server
from acoustack.healthcheck import check
from acoustack.testing import factories
from acoustack.testing.servers import free_port
from acoustack.v1 import store_pb2 as spb
from acoustack_storage.__main__ import watch_database
from acoustack_storage.repository import PostgresStore
from acoustack_storage.servicer import StoreServicer, register


def test_a_database_that_is_down_is_unavailable_then_recovers(proxied_database):
    proxy, url = proxied_database
    store = PostgresStore.open(url, timeout_s=1.0)
    server = start_server([register(StoreServicer(store))], address="127.0.0.1:0")
    target = f"127.0.0.1:{server.port}"
    try:
        deployment = StoreClient(target).start_deployment("meadow", 1.0, 1.0)
        proxy.cut()
        no_retry = StoreClient(target, retry=RetryPolicy(budget_s=0))
        with pytest.raises(UnavailableError, match="unavailable after 1 attempts"):
            no_retry.current_deployment()
        raw = no_retry.stub
        with pytest.raises(grpc.RpcError) as info:
            raw.GetCurrentDeployment(spb.GetCurrentDeploymentRequest(), timeout=10)
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "database" in info.value.details()

        # A client that retries rides over the outage once the database is back.
        threading.Timer(1.5, proxy.restore).start()
        patient = StoreClient(target, retry=RetryPolicy(budget_s=20))
        started = time.monotonic()
        stored = patient.store_recording(factories.recording(deployment.id))
        assert stored.created
        assert time.monotonic() - started >= 1.0
    finally:
        server.stop(0)
        store.close()


def test_health_turns_not_serving_while_the_database_is_down(proxied_database):
    proxy, url = proxied_database
    store = PostgresStore.open(url, timeout_s=0.5)
    server = start_server([register(StoreServicer(store))], address="127.0.0.1:0")
    stop = threading.Event()
    threading.Thread(target=watch_database, args=(store, server, 0.2, stop), daemon=True).start()
    target = f"127.0.0.1:{server.port}"
    try:
        assert check(target) == (True, f"{target}: SERVING")
        proxy.cut()
        assert wait_for(lambda: not check(target)[0], 10), (
            "health stayed SERVING with the database down"
        )
        assert check(target, "acoustack.v1.Store")[1].endswith("NOT_SERVING")
        proxy.restore()
        assert wait_for(lambda: check(target)[0], 10), "health did not recover with the database"
    finally:
        stop.set()
        server.stop(0)
        store.close()


def test_the_store_is_back_within_seconds_of_the_database_after_a_long_outage(proxied_database):
    """Reconnect attempts must not back off without bound: after an outage of minutes, a store
    that waited as long again before its next attempt would refuse work long after Postgres
    was back."""
    proxy, url = proxied_database
    store = PostgresStore.open(url, timeout_s=0.5)
    try:
        assert wait_for(store.ping, 10)
        proxy.cut()
        outage_end = time.monotonic() + 20  # long enough for an unbounded backoff to reach 16 s
        while time.monotonic() < outage_end:  # health checks keep asking meanwhile
            assert not store.ping()
            time.sleep(0.5)
        proxy.restore()
        back = time.monotonic()
        assert wait_for(store.ping, 30)
        assert time.monotonic() - back < 5, (
            f"the store took {time.monotonic() - back:.1f} s to reconnect"
        )
    finally:
        store.close()


def test_the_client_waits_for_a_storage_service_that_is_starting(database_url):
    port = free_port()
    client = StoreClient(f"127.0.0.1:{port}", retry=RetryPolicy(budget_s=20))
    store = PostgresStore.open(database_url)
    holder = {}

    def start_late():
        holder["server"] = start_server(
            [register(StoreServicer(store))], address=f"127.0.0.1:{port}"
        )

    timer = threading.Timer(1.0, start_late)
    timer.start()
    try:
        assert client.current_deployment() is None
    finally:
        timer.join()
        holder["server"].stop(0)
        store.close()


def test_a_client_gives_up_with_a_clear_error_when_nothing_listens():
    port = free_port()
    client = StoreClient(f"127.0.0.1:{port}", retry=RetryPolicy(budget_s=0.5))
    with pytest.raises(UnavailableError) as info:
        client.current_deployment()
    assert f"127.0.0.1:{port} unavailable after" in str(info.value)
    assert "check that the service and its database are running" in str(info.value)


def wait_for(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def run_storage(env: dict[str, str]) -> subprocess.Popen:
    data_dir = tempfile.mkdtemp(prefix="acoustack-storage-data-")  # its copy of the device id
    return subprocess.Popen(
        [sys.executable, "-m", "acoustack_storage"],
        env={**os.environ, "STORAGE_DATA_DIR": data_dir, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_the_service_process_serves_and_drains_on_sigterm(database_url):
    port = free_port()
    proc = run_storage(
        {
            "STORAGE_DATABASE_URL": database_url,
            "STORAGE_GRPC_HOST": "127.0.0.1",
            "STORAGE_GRPC_PORT": str(port),
        }
    )
    target = f"127.0.0.1:{port}"
    try:
        assert wait_for(lambda: check(target)[0], 30), "storage never reported SERVING"
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="acoustack.v1.Store"), timeout=5
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        StoreClient(target).start_deployment("meadow", 1.0, 1.0)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, output
        assert "SIGTERM" in output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_service_refuses_to_start_with_bad_configuration():
    proc = run_storage({"STORAGE_DATABASE_URL": "mysql://x", "STORAGE_GRPC_PORT": "seventy"})
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "STORAGE_DATABASE_URL: String should match pattern" in output
    assert "STORAGE_GRPC_PORT: Input should be a valid integer" in output
    assert "(got 'seventy')" in output


def test_the_service_gives_up_on_an_unreachable_database_with_a_clear_error():
    port = free_port()
    proc = run_storage(
        {
            "STORAGE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/nothing",
            "STORAGE_DATABASE_WAIT_S": "2",
        }
    )
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "the database was not reachable within 2 s" in output
    assert "check STORAGE_DATABASE_URL" in output
