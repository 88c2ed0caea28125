"""`make dev` (python -m acoustack_devstack): the services as local processes.

storage (with its file-management worker), detector (bundled BatDetect2), recorder (replaying the
bat recordings), messenger (to the machine's Mosquitto), scheduler (the detection program) and,
when given a port, the dashboard, against the machine's Postgres and RabbitMQ, in a database and
vhost of their own, logs under the work folder. The end-to-end test uses the same launcher.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from acoustack.healthcheck import check

REPO = Path(__file__).resolve().parents[4]
AUDIO = REPO / "services" / "detector" / "tests" / "data" / "audio"
POSTGRES_ADMIN = os.environ.get("DEV_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_BASE = os.environ.get("DEV_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
MQTT_HOST = os.environ.get("DEV_MQTT_HOST", "127.0.0.1")
SERVICES = ("storage", "detector", "recorder", "messenger", "scheduler")  # the order they start in


@dataclass
class Ports:
    storage: int = 50051
    detector: int = 50052
    recorder: int = 50053
    scheduler: int = 50054
    messenger: int = 50055
    # The dashboard's web port; 0: the stack runs without it.
    dashboard: int = 0


@dataclass
class DevStack:
    work: Path
    name: str = "acoustack_dev"
    ports: Ports = field(default_factory=Ports)
    program_config: dict = field(default_factory=dict)
    program_name: str = "detection"
    # Process counts are the environment's, as on a device (compose/.env).
    detector_concurrency: int = 2
    # Overrides of any service's environment (a test pointing one elsewhere).
    extra_environment: dict[str, dict[str, str]] = field(default_factory=dict)
    # Each service's Prometheus port (`<SERVICE>_METRICS_PORT`); a service not named has none.
    metrics_ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        return POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{self.name}"

    @property
    def broker_url(self) -> str:
        return AMQP_BASE + self.name

    def prepare(self) -> None:
        """The database and the vhost (kept between runs: the data survives a restart)."""
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            if not admin.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.name,)
            ).fetchone():
                admin.execute(f'CREATE DATABASE "{self.name}"')
        subprocess.run(
            ["rabbitmqctl", "-q", "add_vhost", self.name], capture_output=True, check=False
        )
        subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", self.name, "guest", ".*", ".*", ".*"],
            capture_output=True, check=True,
        )  # fmt: skip
        for folder in ("logs", "recordings/tmp", *(f"data/{s}" for s in self.services)):
            (self.work / folder).mkdir(parents=True, exist_ok=True)
        (self.work / "program.json").write_text(json.dumps(self.program(), indent=2))

    def program(self) -> dict:
        """The detection program's settings for a local run, with the caller's on top."""
        config = {
            "recording": {"min_free_disk_mb": 10},
            "file_management": {"destination": str(self.work / "recordings")},
            "messaging": {"mqtt_host": MQTT_HOST, "mqtt_topic": f"{self.name}/messages"},
        }
        for section, values in self.program_config.items():
            config[section] = {**config.get(section, {}), **values}
        return config

    @property
    def secrets_dir(self) -> Path:
        return self.work / "secrets"

    def data_dir(self, service: str) -> Path:
        """Each service's own data volume, as in compose: nothing is shared by accident."""
        return self.work / "data" / service

    def environments(self) -> dict[str, dict[str, str]]:
        storage = f"127.0.0.1:{self.ports.storage}"
        temporary_area = {
            "ACOUSTACK_TEMP_DIR": str(self.work / "recordings" / "tmp"),
            "ACOUSTACK_TEMP_FALLBACK_DIR": str(self.work / "recordings" / "tmp"),
        }
        environments = {
            "storage": {
                "STORAGE_DATABASE_URL": self.database_url,
                "STORAGE_GRPC_HOST": "127.0.0.1",
                "STORAGE_GRPC_PORT": str(self.ports.storage),
                "STORAGE_BROKER_URL": self.broker_url,
                "STORAGE_DATA_DIR": str(self.data_dir("storage")),
                **temporary_area,
            },
            "detector": {
                "DETECTOR_BROKER_URL": self.broker_url,
                "DETECTOR_STORAGE_TARGET": storage,
                "DETECTOR_RECORDINGS_ROOT": str(self.work / "recordings"),
                "DETECTOR_GRPC_HOST": "127.0.0.1",
                "DETECTOR_GRPC_PORT": str(self.ports.detector),
                "ACOUSTACK_MODEL_DIR": os.environ.get(
                    "ACOUSTACK_MODEL_DIR", str(REPO / "build" / "model")
                ),
                "DETECTOR_CHECK_FILE": str(sorted(AUDIO.glob("*.wav"))[0]),
                "DETECTOR_CONCURRENCY": str(self.detector_concurrency),
            },
            "messenger": {
                "MESSENGER_BROKER_URL": self.broker_url,
                "MESSENGER_STORAGE_TARGET": storage,
                "MESSENGER_GRPC_HOST": "127.0.0.1",
                "MESSENGER_GRPC_PORT": str(self.ports.messenger),
                "MESSENGER_DATA_DIR": str(self.data_dir("messenger")),
                # The secrets the messaging section names, one file each (e.g. mqtt_password),
                # as compose and k3s mount them at /run/secrets.
                "MESSENGER_SECRETS_DIR": str(self.secrets_dir),
            },
            "recorder": {
                "RECORDER_BROKER_URL": self.broker_url,
                "RECORDER_STORAGE_TARGET": storage,
                "RECORDER_SOURCE": "replay",
                "RECORDER_REPLAY_DIR": str(AUDIO),
                "RECORDER_DATA_DIR": str(self.data_dir("recorder")),
                "RECORDER_HEALTH_PORT": str(self.ports.recorder),
                **temporary_area,
            },
            "scheduler": {
                "SCHEDULER_BROKER_URL": self.broker_url,
                "SCHEDULER_STORAGE_TARGET": storage,
                "SCHEDULER_PROGRAM": self.program_name,
                "SCHEDULER_CONFIG_FILE": str(self.work / "program.json"),
                "SCHEDULER_SERVICES": ",".join(
                    f"{name}=127.0.0.1:{self.health_port(name)}"
                    for name in ("detector", "recorder", "messenger")
                ),
                "SCHEDULER_GRPC_HOST": "127.0.0.1",
                "SCHEDULER_GRPC_PORT": str(self.ports.scheduler),
                "SCHEDULER_DISK_PATH": str(self.work),
            },
            "dashboard": {
                "DASHBOARD_STORAGE_TARGET": storage,
                "DASHBOARD_CONTROL_TARGET": f"127.0.0.1:{self.ports.scheduler}",
                "DASHBOARD_BROKER_URL": self.broker_url,
                "DASHBOARD_RECORDINGS_ROOT": str(self.work / "recordings"),
                "DASHBOARD_DATA_DIR": str(self.data_dir("dashboard")),
                "DASHBOARD_HTTP_HOST": "127.0.0.1",
                "DASHBOARD_HTTP_PORT": str(self.ports.dashboard),
            },
        }
        for service, environment in environments.items():
            # Its worker processes' counts for /metrics, as compose keeps them (emptied at start).
            environment["PROMETHEUS_MULTIPROC_DIR"] = str(self.work / "metrics" / service)
            if service in self.metrics_ports:
                environment[f"{service.upper()}_METRICS_HOST"] = "127.0.0.1"
                environment[f"{service.upper()}_METRICS_PORT"] = str(self.metrics_ports[service])
        for service, overrides in self.extra_environment.items():
            environments[service].update(overrides)
        return environments

    @property
    def services(self) -> tuple[str, ...]:
        return (*SERVICES, "dashboard") if self.ports.dashboard else SERVICES

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.dashboard}/"

    def health_port(self, service: str) -> int:
        return getattr(self.ports, service)

    def healthy(self, service: str) -> bool:
        if service == "dashboard":  # a web server: its probe is /healthz
            try:
                with urllib.request.urlopen(self.dashboard_url + "healthz", timeout=1.0) as reply:
                    return reply.status == 200
            except (OSError, urllib.error.URLError):
                return False
        return check(f"127.0.0.1:{self.health_port(service)}", timeout_s=1.0)[0]

    def start(self, service: str, timeout_s: float = 90.0) -> subprocess.Popen:
        log = open(self.work / "logs" / f"{service}.log", "ab")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(
            [sys.executable, "-m", f"acoustack_{service}"],
            env={**os.environ, **self.environments()[service]},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes[service] = proc
        deadline = time.monotonic() + timeout_s
        while not self.healthy(service):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{service} exited ({proc.returncode}); see {self.work}/logs/{service}.log"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{service} not SERVING after {timeout_s:.0f} s; see {self.work}/logs/{service}.log"
                )
            time.sleep(0.2)
        return proc

    def stop(self, service: str, *, kill: bool = False, timeout_s: float = 30.0) -> None:
        proc = self.processes.get(service)
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        # Only now: a second Ctrl-C during the wait still finds it in kill_all.
        self.processes.pop(service, None)

    def kill_all(self) -> None:
        """No more waiting (a second Ctrl-C), but nothing left running to hold the ports."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.kill()
        for proc in self.processes.values():
            proc.wait()
        self.processes.clear()

    def up(self) -> None:
        self.prepare()
        for service in self.services:
            self.start(service)

    def down(self) -> None:
        for service in reversed(self.services):
            self.stop(service)

    def drop(self) -> None:
        """Delete the stack's database and vhost (a test's throwaway stack)."""
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", self.name], capture_output=True,
                       check=False)  # fmt: skip

    @contextlib.contextmanager
    def throwaway(self) -> Iterator[DevStack]:
        """Up for the block, then down with its database and vhost deleted, whatever happened."""
        try:
            self.up()
            yield self
        finally:
            self.down()
            self.drop()


def main() -> int:
    parser = argparse.ArgumentParser(description="Run acoustack's services as local processes.")
    parser.add_argument(
        "--work", type=Path, default=REPO / "build" / "dev", help="logs, recordings, data"
    )
    parser.add_argument(
        "--dashboard-port", type=int, default=8080, help="the dashboard's web port (0: none)"
    )
    args = parser.parse_args()
    stack = DevStack(args.work, ports=Ports(dashboard=args.dashboard_port))
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        stack.up()
        print(f"acoustack is up (logs in {args.work / 'logs'}). Next:")
        control = f"--control 127.0.0.1:{stack.ports.scheduler}"
        print(
            f"  uv run acoustack deployment start --name test --latitude 52.2 --longitude 0.12 {control}"
        )
        print(f"  uv run acoustack status {control}")
        if stack.ports.dashboard:
            print(
                f"Dashboard: {stack.dashboard_url} (password: DASHBOARD_PASSWORD, else the one in "
                f"{stack.data_dir('dashboard') / 'password'}, also in its log at the first start)"
            )
        print("Ctrl-C stops everything.")
        while not stopping and all(p.poll() is None for p in stack.processes.values()):
            time.sleep(1)
        for name, proc in stack.processes.items():
            if proc.poll() is not None:
                print(
                    f"{name} exited ({proc.returncode}); see {args.work / 'logs' / (name + '.log')}",
                    file=sys.stderr,
                )
    except KeyboardInterrupt:
        pass
    finally:
        shut_down(stack)
    return 0


def shut_down(stack: DevStack) -> None:
    """Each service gets its graceful stop; a second Ctrl-C (people press it twice) kills what is
    left at once instead of leaving it running with its ports taken."""
    try:
        print("stopping (Ctrl-C again kills at once) …", file=sys.stderr, flush=True)
        stack.down()
    except KeyboardInterrupt:
        stack.kill_all()


if __name__ == "__main__":
    sys.exit(main())
