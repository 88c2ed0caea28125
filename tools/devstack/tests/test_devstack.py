"""`make dev` stopping: a second Ctrl-C while the services stop gracefully must not leave any of
them running (their ports would be taken and the next `make dev` would fail)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

STACK_WITH_STUBBORN_SERVICES = """
import subprocess, sys, time
from pathlib import Path
from acoustack_devstack import DevStack, shut_down

stack = DevStack(Path(sys.argv[1]))
stubborn = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(120)"
)
for name in ("messenger", "scheduler"):
    stack.processes[name] = subprocess.Popen(
        [sys.executable, "-c", stubborn], stdout=subprocess.PIPE, text=True
    )
    stack.processes[name].stdout.readline()  # SIGTERM is ignored from now on
try:  # the test's Ctrl-C may come as soon as the pids are printed
    print(" ".join(str(p.pid) for p in stack.processes.values()), flush=True)
    time.sleep(60)
except KeyboardInterrupt:
    pass
shut_down(stack)
print("stopped", flush=True)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_second_ctrl_c_kills_what_a_graceful_stop_still_waits_for(tmp_path):
    stack = subprocess.Popen(
        [sys.executable, "-c", STACK_WITH_STUBBORN_SERVICES, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        pids = [int(pid) for pid in stack.stdout.readline().split()]
        assert len(pids) == 2
        stack.send_signal(signal.SIGINT)  # the graceful stop: it waits up to 30 s on each
        deadline = time.monotonic() + 10
        while "stopping" not in stack.stderr.readline() and time.monotonic() < deadline:
            pass
        time.sleep(0.5)
        assert stack.poll() is None, "the graceful stop should still be waiting"
        stack.send_signal(signal.SIGINT)  # people press it twice
        out, _ = stack.communicate(timeout=10)
        assert "stopped" in out
        assert [pid for pid in pids if alive(pid)] == []
    finally:
        if stack.poll() is None:
            stack.kill()
            stack.wait()
