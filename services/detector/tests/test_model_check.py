"""`acoustack model check`: the example model server passes every check, and copies of it broken in
the ways outside implementers broke theirs are caught, each by the check that names the fault and
its fix. Real servers as processes on loopback ports."""

from __future__ import annotations

from pathlib import Path

import pytest

from acoustack import cli
from acoustack.testing.servers import free_port

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "energy_model" / "energy_model.py"
LONG_S = "3"  # seconds in the long request: enough to stream several 1 MiB chunks


def model_check(capsys, target, *extra) -> tuple[int, str]:
    status = cli.main(["model", "check", f"grpc://{target}", "--long-s", LONG_S, *extra])
    return status, capsys.readouterr().out


def verdicts(out: str) -> dict[str, str]:
    """check name -> its verdict line (with its fix, when there is one)."""
    found: dict[str, str] = {}
    last = None
    for line in out.splitlines():
        word = line[:4]
        if word in ("PASS", "WARN", "FAIL"):
            last = line.split()[1]
            found[last] = line
        elif line.strip().startswith("fix:") and last:
            found[last] += "\n" + line.strip()
    return found


def test_the_example_server_passes_every_check(capsys, example_server, recordings_root):
    status, out = model_check(capsys, example_server, "--recordings-dir", str(recordings_root))
    assert status == 0, out
    checks = verdicts(out)
    assert set(checks) == {
        "health", "info", "detect-inline", "detect-stream", "time-expansion", "detect-path",
        "detect-path-time-expansion", "bad-requests", "long-recording",
    }  # fmt: skip
    assert all(line.startswith("PASS") for line in checks.values()), out
    assert "energy-band 1.0" in checks["info"]
    assert "5 bad requests answered INVALID_ARGUMENT" in checks["bad-requests"]
    assert "9 passed, 0 warnings, 0 failed" in out


def test_a_server_that_cannot_see_the_folder_is_warned_not_failed(
    capsys, tmp_path, start_model_server
):
    with start_model_server(EXAMPLE, None) as target:  # no recordings volume at all
        status, out = model_check(capsys, target, "--recordings-dir", str(tmp_path))
    assert status == 0, out
    line = verdicts(out)["detect-path"]
    assert line.startswith("WARN") and "PERMISSION_DENIED" in line
    assert "detection.model_send_audio true" in line


# Each break: what is changed in a copy of the example, the check that must fail, and words its
# verdict must hold.
BREAKS = {
    "header rate taken as the real rate": (
        ("rate = int(header.samplerate_hz * (header.time_expansion or 1.0))",
         "rate = int(header.samplerate_hz)"),
        "time-expansion",
        ["0 detections instead of 5", "the real rate is samplerate_hz x time_expansion"],
    ),
    "scores above 1": (
        ("score = float(min(1.0, excess[start:stop].max() / (3 * self.margin_db)))",
         "score = float(excess[start:stop].max() / self.margin_db)"),
        "detect-inline",
        ["malformed", "detections[0].detection_score:", "is above 1"],
    ),
    "bad headers not refused": (
        ("if header.samplerate_hz <= 0 or header.channels <= 0:", "if False:"),
        "bad-requests",
        ["channels 0: answered OK", "answer INVALID_ARGUMENT naming the field"],
    ),
    "no health service": (
        ("health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)", "pass"),
        "health",
        ["UNIMPLEMENTED", "serve the standard gRPC health service"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", BREAKS)
def test_a_broken_server_is_caught_by_name_with_its_fix(
    capsys, tmp_path, recordings_root, start_model_server, name
):
    (old, new), failing, words = BREAKS[name]
    source = EXAMPLE.read_text()
    assert old in source, "the example changed: update this break"
    broken = tmp_path / "broken_model.py"
    broken.write_text(source.replace(old, new))
    with start_model_server(broken, recordings_root) as target:
        status, out = model_check(capsys, target, "--recordings-dir", str(recordings_root))
    assert status == 1, out
    line = verdicts(out)[failing]
    assert line.startswith("FAIL"), out
    for word in words:
        assert word in line, (word, line)
    assert "0 failed" not in out


def test_a_server_that_is_not_there_fails_saying_so(capsys):
    target = f"127.0.0.1:{free_port()}"
    status, out = model_check(capsys, target)
    assert status == 1
    checks = verdicts(out)
    assert set(checks) == {"health", "info"}  # nothing else can be asked
    assert checks["info"].startswith("FAIL") and "Info answered UNAVAILABLE" in checks["info"]
    assert "is the model server running?" in checks["info"]


def test_a_target_that_is_not_grpc_is_refused(capsys):
    assert cli.main(["model", "check", "http://example.org/model"]) == 2
    assert "is not grpc://HOST:PORT" in capsys.readouterr().err
