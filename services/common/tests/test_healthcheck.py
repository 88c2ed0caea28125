"""The containers' health check, `acoustack-grpc-health` (bash), against a real gRPC server: it says
what grpcio's own health client says, with nothing but bash and coreutils."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from acoustack import self_check
from acoustack.grpc_server import start_server
from acoustack.healthcheck import check
from acoustack.testing.servers import free_port

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "acoustack-grpc-health"
SELF_CHECK = "acoustack.v1.SelfCheck"


@pytest.fixture
def server():
    running = start_server([self_check.register(lambda config: [])], address="127.0.0.1:0")
    yield running
    running.stop(0)


@pytest.fixture(scope="module")
def tools_only(tmp_path_factory) -> dict[str, str]:
    # A PATH with the programs the script may run and nothing else: no Python.
    folder = tmp_path_factory.mktemp("path")
    for tool in ("bash", "timeout", "cat", "od", "tr"):
        (folder / tool).symlink_to(shutil.which(tool))
    return {"PATH": str(folder), "ACOUSTACK_HEALTH_READ_S": "0.5"}


def health(env: dict[str, str], *args: str) -> tuple[int, str]:
    done = subprocess.run(
        [env["PATH"] + "/bash", str(SCRIPT), *args],
        capture_output=True, text=True, timeout=30, env=env, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout.strip()


def test_the_script_agrees_with_grpcio_on_serving_and_not_serving(server, tools_only):
    target = f"127.0.0.1:{server.port}"
    for service in ("", SELF_CHECK):
        assert check(target, service) == (True, f"{target}: SERVING")
        assert health(tools_only, target, *[service][: bool(service)]) == (0, f"{target}: SERVING")
    server.set_serving(False)
    for service in ("", SELF_CHECK):
        assert check(target, service) == (False, f"{target}: NOT_SERVING")
        assert health(tools_only, target, *[service][: bool(service)]) == (
            1,
            f"{target}: NOT_SERVING",
        )


def test_an_unknown_service_no_server_or_a_bad_target_is_not_healthy(server, tools_only):
    target = f"127.0.0.1:{server.port}"
    assert not check(target, "acoustack.v1.Nothing")[0]
    code, text = health(tools_only, target, "acoustack.v1.Nothing")
    assert code == 1 and "no health status in the answer" in text
    nobody = f"127.0.0.1:{free_port()}"
    assert health(tools_only, nobody) == (1, f"{nobody}: UNAVAILABLE: nothing answers there")
    assert health(tools_only, "storage") == (2, "storage: not HOST:PORT")
    assert health(tools_only, "127.0.0.1:port") == (2, "127.0.0.1:port: not HOST:PORT")
