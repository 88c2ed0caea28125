"""The k3s manifests as a cluster would read them: every overlay rendered by kustomize, and each
service's settings loaded from the environment its pod would get. k3s cannot run here; this checks
what would break a device at its first start (a setting a service refuses, a target no Service
answers, a probe on the wrong port, a temporary area the pods do not share)."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from acoustack_dashboard.settings import DashboardSettings
from acoustack_detector.settings import DetectorSettings
from acoustack_hub.settings import HubSettings
from acoustack_messenger.settings import MessengerSettings
from acoustack_recorder.settings import RecorderSettings
from acoustack_scheduler.settings import SchedulerSettings
from acoustack_storage.settings import StorageSettings

K3S = Path(__file__).resolve().parents[2] / "k3s"
OVERLAYS = sorted(p.parent.name for p in (K3S / "overlays").glob("*/kustomization.yaml"))
SETTINGS = {
    "storage": (StorageSettings, "STORAGE"),
    "detector": (DetectorSettings, "DETECTOR"),
    "recorder": (RecorderSettings, "RECORDER"),
    "messenger": (MessengerSettings, "MESSENGER"),
    "scheduler": (SchedulerSettings, "SCHEDULER"),
}
PORTS = {
    "storage": 50051,
    "detector": 50052,
    "recorder": 50053,
    "scheduler": 50054,
    "messenger": 50055,
}


def render(overlay: str) -> list[dict]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(K3S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


HUB_NAMESPACE = "hub"


def by_namespace(docs: list[dict], hub: bool = False) -> dict[str, list[dict]]:
    """Each device's stack by namespace (or, with ``hub``, the fleet's hub alone)."""
    spaces: dict[str, list[dict]] = {}
    for doc in docs:
        if doc["kind"] != "Namespace":
            namespace = doc["metadata"]["namespace"]
            if (namespace == HUB_NAMESPACE) == hub:
                spaces.setdefault(namespace, []).append(doc)
    return spaces


def find(docs, kind: str, name: str) -> dict:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


# The Secret a device is given before its first start (k3s/README.md): made from the file
# scripts/secrets.sh writes, as `kubectl create secret generic --from-env-file` would.
CREDENTIALS = "acoustack-credentials"
HUB_CREDENTIALS = "hub-credentials"  # the hub's: made the same way (k3s/README.md)
_secrets: dict[str, str] = {}


def made_secrets(tmp_dir: Path) -> dict[str, str]:
    path = tmp_dir / "secrets.env"
    made = subprocess.run(
        ["bash", str(K3S.parent / "scripts" / "secrets.sh")],
        env={"SECRETS_FILE": str(path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    return dict(
        line.split("=", 1) for line in path.read_text().splitlines() if not line.startswith("#")
    )


@pytest.fixture(scope="module", autouse=True)
def credentials(tmp_path_factory) -> dict[str, str]:
    _secrets.update(made_secrets(tmp_path_factory.mktemp("secrets")))
    return _secrets


def container_env(docs, container: dict) -> dict[str, str]:
    """The environment the kubelet would give ``container``: references resolved, $(VAR) expanded."""
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            value = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), item["value"])
        elif "fieldRef" in item["valueFrom"]:  # the pod's own name: the first replica's
            assert item["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
            value = "pod-0"
        elif "configMapKeyRef" in item["valueFrom"]:
            ref = item["valueFrom"]["configMapKeyRef"]
            value = str(find(docs, "ConfigMap", ref["name"])["data"][ref["key"]])
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            if ref["name"] in (CREDENTIALS, HUB_CREDENTIALS):  # made by hand, never shipped
                value = _secrets[ref["key"]]
            else:
                encoded = find(docs, "Secret", ref["name"])["data"][ref["key"]]
                value = base64.b64decode(encoded).decode()
        env[item["name"]] = value
    return env


def workload(docs, name: str) -> dict:
    return next(
        d
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet") and d["metadata"]["name"] == name
    )


def main_container(docs, name: str) -> dict:
    spec = workload(docs, name)["spec"]["template"]["spec"]
    return next(c for c in spec["containers"] if c["name"] == name)


def service_port(docs, host_port: str) -> None:
    host, port = host_port.rsplit(":", 1)
    service = find(docs, "Service", host)
    assert int(port) in [p["port"] for p in service["spec"]["ports"]], host_port


@pytest.fixture(scope="module", params=OVERLAYS)
def device_stacks(request) -> list[list[dict]]:
    spaces = by_namespace(render(request.param))
    assert spaces, f"{request.param} renders nothing"
    return list(spaces.values())


def test_there_is_an_overlay_for_one_device_and_one_for_a_fleet():
    assert {"single-node", "fleet"} <= set(OVERLAYS)


def test_every_service_accepts_the_settings_its_pod_gets(device_stacks):
    for docs in device_stacks:
        for name, (settings_class, prefix) in SETTINGS.items():
            env = container_env(docs, main_container(docs, name))
            settings = settings_class.load(prefix, env)  # raises ConfigError naming the variable
            if hasattr(settings, "storage_target"):
                service_port(docs, settings.storage_target)
            if hasattr(settings, "broker_url"):
                broker = urlsplit(settings.broker_url)
                service_port(docs, f"{broker.hostname}:{broker.port}")
                assert (broker.username, broker.password) == (
                    "acoustack",
                    _secrets["RABBITMQ_PASSWORD"],
                )
        database = urlsplit(
            StorageSettings.load(
                "STORAGE", container_env(docs, main_container(docs, "storage"))
            ).database_url
        )
        service_port(docs, f"{database.hostname}:{database.port}")
        scheduler = container_env(docs, main_container(docs, "scheduler"))
        for entry in scheduler["SCHEDULER_SERVICES"].split(","):
            service_port(docs, entry.split("=", 1)[1])


def test_health_probes_ask_each_service_on_its_own_port(device_stacks):
    for docs in device_stacks:
        for name, port in PORTS.items():
            container = main_container(docs, name)
            assert container["readinessProbe"]["grpc"]["port"] == port, name
            assert "livenessProbe" in container, name
            assert port in [p["containerPort"] for p in container["ports"]]
            service_port(docs, f"{name}:{port}")
            assert "memory" in container["resources"]["limits"], name


def test_recorder_detector_and_storage_share_the_recordings_and_a_ram_backed_temporary_area(
    device_stacks,
):
    for docs in device_stacks:
        mounts = {}
        for name in ("recorder", "detector", "storage"):
            spec = workload(docs, name)["spec"]["template"]["spec"]
            volumes = {v["name"]: v for v in spec["volumes"]}
            by_path = {
                m["mountPath"]: volumes[m["name"]]
                for m in main_container(docs, name)["volumeMounts"]
            }
            mounts[name] = by_path
            temporary = by_path["/recordings/tmp"]
            assert temporary["hostPath"]["path"].startswith("/dev/shm/"), name
            env = container_env(docs, main_container(docs, name))
            told = [
                v for v in env.values() if v.startswith("/") and "/recordings/tmp".startswith(v)
            ]
            assert told, f"{name} is not told where the temporary area is"
        assert len({str(m["/recordings/tmp"]) for m in mounts.values()}) == 1
        assert len({str(m["/recordings"]) for m in mounts.values()}) == 1


def test_one_recorder_and_one_beat_even_during_an_update(device_stacks):
    for docs in device_stacks:
        for name in ("recorder", "scheduler"):
            spec = workload(docs, name)["spec"]
            assert spec["replicas"] == 1
            assert spec["strategy"]["type"] == "Recreate", name


def test_each_fleet_device_runs_its_whole_stack_on_its_own_node():
    spaces = by_namespace(render("fleet"))
    assert len(spaces) >= 2
    for namespace, docs in spaces.items():
        device = namespace.removeprefix("acoustack-")
        workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
        assert {w["metadata"]["name"] for w in workloads} == set(PORTS) | {
            "postgres",
            "rabbitmq",
            "dashboard",
        }
        for w in workloads:
            selector = w["spec"]["template"]["spec"].get("nodeSelector")
            assert selector == {"acoustack-device": device}, (namespace, w["metadata"]["name"])


def test_no_password_is_in_the_manifests(device_stacks):
    """The credentials Secret is made on the device (k3s/README.md), not shipped: a rendered
    overlay holds no Secret, and the messenger reads the MQTT password as a file from it."""
    for docs in device_stacks:
        assert [d["metadata"]["name"] for d in docs if d["kind"] == "Secret"] == []
        spec = workload(docs, "messenger")["spec"]["template"]["spec"]
        [volume] = [v for v in spec["volumes"] if "secret" in v]
        assert volume["secret"]["secretName"] == CREDENTIALS
        assert volume["secret"]["items"] == [{"key": "MQTT_PASSWORD", "path": "mqtt_password"}]
        mounts = {
            m["name"]: m["mountPath"] for m in main_container(docs, "messenger")["volumeMounts"]
        }
        assert mounts[volume["name"]] == "/run/secrets"


def test_every_service_is_scraped_where_it_serves_its_metrics(device_stacks):
    for docs in device_stacks:
        for name, (settings_class, prefix) in SETTINGS.items():
            settings = settings_class.load(prefix, container_env(docs, main_container(docs, name)))
            template = workload(docs, name)["spec"]["template"]
            annotations = template["metadata"]["annotations"]
            assert annotations["prometheus.io/scrape"] == "true", name
            assert int(annotations["prometheus.io/port"]) == settings.metrics_port > 0, name
            ports = {p["name"]: p["containerPort"] for p in main_container(docs, name)["ports"]}
            assert ports["metrics"] == settings.metrics_port, name
            assert settings.metrics_dir is not None, name  # the pool processes' counts are summed


def test_the_dashboard_gets_usable_settings_http_probes_and_read_only_recordings(device_stacks):
    for docs in device_stacks:
        container = main_container(docs, "dashboard")
        settings = DashboardSettings.load("DASHBOARD", container_env(docs, container))
        for target in (settings.storage_target, settings.control_target):
            service_port(docs, target)
        broker = urlsplit(settings.broker_url)
        service_port(docs, f"{broker.hostname}:{broker.port}")
        assert settings.password == "", "no password in the manifests: one is generated"
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert [p["containerPort"] for p in container["ports"]] == [8080]
        service_port(docs, "dashboard:8080")
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/recordings"].get("readOnly") and mounts["/recordings/tmp"].get("readOnly")
        assert "memory" in container["resources"]["limits"]


# The fleet's hub (namespace hub)


def hub_stack() -> list[dict]:
    [docs] = by_namespace(render("fleet"), hub=True).values()
    return docs


def test_the_fleet_has_a_hub_with_two_replicas_a_central_postgres_and_broker():
    docs = hub_stack()
    hub = workload(docs, "hub")
    assert hub["kind"] == "StatefulSet" and hub["spec"]["replicas"] >= 2  # names kept: client ids
    container = main_container(docs, "hub")
    settings = HubSettings.load("HUB", container_env(docs, container))
    database = urlsplit(settings.database_url)
    service_port(docs, f"{database.hostname}:{database.port}")
    assert database.password == _secrets["POSTGRES_PASSWORD"]
    assert workload(docs, "postgres")["kind"] == "StatefulSet"
    service_port(docs, f"{settings.broker_host}:{settings.broker_port}")
    assert settings.client_id == "pod-0" and settings.broker_username
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert str(settings.broker_secret_file.parent) in mounts
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    service_port(docs, f"hub:{settings.http_port}")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": settings.http_port, "metrics": settings.metrics_port}
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "Secret"] == []
    for w in (d for d in docs if d["kind"] in ("Deployment", "StatefulSet")):
        assert w["spec"]["template"]["spec"]["nodeSelector"] == {"acoustack-role": "hub"}


def test_the_hub_broker_gets_the_hub_broker_configuration():
    docs = hub_stack()
    [config] = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("hub-broker")
    ]
    shipped = (K3S.parent / "services" / "hub" / "broker.conf").read_text()
    assert config["data"]["broker.conf"] == shipped
    broker = workload(docs, "mosquitto")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in broker["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in main_container(docs, "mosquitto")["volumeMounts"]}
    assert (
        volumes[mounts["/etc/mosquitto/acoustack.d"]]["configMap"]["name"]
        == config["metadata"]["name"]
    )


def test_each_fleet_device_is_set_to_send_to_the_hub():
    """The Job each device runs sets its messaging section to the hub's broker, by a name that
    resolves to the hub's mosquitto Service, and may reach the device's scheduler."""
    hub = hub_stack()
    for namespace, docs in by_namespace(render("fleet")).items():
        job = find(docs, "Job", "send-to-hub")
        template = job["spec"]["template"]
        assert template["metadata"]["labels"]["acoustack.io/control-client"] == "true"
        [container] = template["spec"]["containers"]
        env = container_env(docs, container)
        service_port(docs, env["ACOUSTACK_CONTROL"])
        host = env["HUB_MQTT_HOST"]
        assert host == f"mosquitto.{HUB_NAMESPACE}.svc.cluster.local", namespace
        service_port(hub, f"mosquitto:{env['HUB_MQTT_PORT']}")
        script = container["command"][-1]
        for field in ("mqtt_host", "mqtt_port", "mqtt_topic", "mqtt_username"):
            assert f"acoustack config set --field messaging.{field}" in script
        topic = HubSettings.load("HUB", container_env(hub, main_container(hub, "hub")))
        assert env["HUB_MQTT_TOPIC"] == topic.subscribe_topic


def _env_file(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def expanded(args: list[str], env: dict[str, str]) -> list[str]:
    """Container args as the kubelet expands $(VAR) from the container's environment."""
    return [re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), a) for a in args]


def test_postgres_and_rabbitmq_are_sized_for_a_device_as_in_compose(device_stacks):
    compose_env = _env_file(K3S.parent / "compose" / ".env")
    for docs in device_stacks:
        postgres = main_container(docs, "postgres")
        args = expanded(postgres["args"], container_env(docs, postgres))
        for setting, key in (
            ("shared_buffers", "POSTGRES_SHARED_BUFFERS"),
            ("max_connections", "POSTGRES_MAX_CONNECTIONS"),
            ("work_mem", "POSTGRES_WORK_MEM"),
            ("maintenance_work_mem", "POSTGRES_MAINTENANCE_WORK_MEM"),
        ):
            assert f"{setting}={compose_env[key]}" in args, (setting, args)
        rabbitmq = container_env(docs, main_container(docs, "rabbitmq"))
        assert rabbitmq["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] == compose_env["RABBITMQ_ERL_ARGS"]
        storage = StorageSettings.load(
            "STORAGE", container_env(docs, main_container(docs, "storage"))
        )
        # Every pool connection is a Postgres backend: the pool must leave room for the probes.
        assert storage.pool_max_size < int(compose_env["POSTGRES_MAX_CONNECTIONS"]) - 2


def _probe(command: list[str]) -> int:
    return subprocess.run(command, capture_output=True, timeout=30, check=False).returncode


def test_rabbitmq_probes_pass_on_a_real_broker_and_fail_on_another_server(device_stacks):
    """Run the pod's own probe commands here, against the RabbitMQ on 127.0.0.1:5672, then with
    the port pointed at Postgres (5432), which answers the AMQP header with no Connection.Start."""
    for docs in device_stacks:
        container = main_container(docs, "rabbitmq")
        for probe in ("startupProbe", "readinessProbe"):
            command = container[probe]["exec"]["command"]
            assert "rabbitmq-diagnostics" not in " ".join(command), probe
            assert _probe(command) == 0, (probe, command)
            elsewhere = [part.replace("/5672", "/5432") for part in command]
            assert _probe(elsewhere) != 0, (probe, elsewhere)


def test_the_small_device_overlay_runs_one_detection_worker_and_a_smaller_pool():
    def settings(overlay: str) -> tuple[int, int]:
        (docs,) = by_namespace(render(overlay)).values()
        detector = DetectorSettings.load(
            "DETECTOR", container_env(docs, main_container(docs, "detector"))
        )
        storage = StorageSettings.load(
            "STORAGE", container_env(docs, main_container(docs, "storage"))
        )
        return detector.concurrency, storage.pool_max_size

    low_memory = _env_file(K3S.parent / "compose" / "low-memory.env")
    assert settings("small-device") == (
        int(low_memory["DETECTOR_CONCURRENCY"]),
        int(low_memory["STORAGE_POOL_MAX_SIZE"]),
    )
    assert settings("single-node") == (2, 8)  # the Pi 4 default, as compose/.env
