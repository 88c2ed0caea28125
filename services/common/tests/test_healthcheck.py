"""The container health check, `python -m acoustack.healthcheck`, against a real gRPC server: it
says what grpcio's own health client says, and loads no grpcio to say it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from acoustack import self_check
from acoustack.grpc_server import start_server
from acoustack.healthcheck import check, probe
from acoustack.testing.servers import free_port

SELF_CHECK = "acoustack.v1.SelfCheck"


@pytest.fixture
def server():
    running = start_server([self_check.register(lambda config: [])], address="127.0.0.1:0")
    yield running
    running.stop(0)


def command(target: str, *service: str) -> subprocess.CompletedProcess[str]:
    # -X importtime lists every module the command loads, on stderr.
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "acoustack.healthcheck", target, *service],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_the_probe_agrees_with_grpcio_on_serving_and_not_serving(server):
    target = f"127.0.0.1:{server.port}"
    for service in ("", SELF_CHECK):
        assert probe(target, service) == check(target, service) == (True, f"{target}: SERVING")
    server.set_serving(False)
    for service in ("", SELF_CHECK):
        assert probe(target, service) == check(target, service) == (False, f"{target}: NOT_SERVING")


def test_an_unknown_service_or_no_server_is_not_healthy(server):
    target = f"127.0.0.1:{server.port}"
    assert not probe(target, "acoustack.v1.Nothing")[0]
    assert not check(target, "acoustack.v1.Nothing")[0]
    nobody = f"127.0.0.1:{free_port()}"
    ok, text = probe(nobody)
    assert not ok and text.startswith(f"{nobody}: UNAVAILABLE")
    assert probe("storage") == (False, "storage: not HOST:PORT")


def test_the_command_exits_by_health_without_loading_grpcio(server):
    target = f"127.0.0.1:{server.port}"
    serving = command(target)
    assert (serving.returncode, serving.stdout.strip()) == (0, f"{target}: SERVING")
    loaded = {line.split("|")[-1].strip() for line in serving.stderr.splitlines()}
    assert "acoustack" in loaded  # the listing is complete: the package was loaded
    assert not any(name == "grpc" or name.startswith("grpc.") for name in loaded)
    server.set_serving(False)
    assert command(target, SELF_CHECK).returncode == 1
    bad = command("storage")
    assert (bad.returncode, bad.stdout.strip()) == (1, "storage: not HOST:PORT")
