"""The k3s NetworkPolicies, rendered by kustomize for every overlay and read as a cluster would:
only the services reach storage, only the CLI and the dashboard reach the scheduler's Control API,
Postgres only storage; nothing of another device (another namespace in the fleet) reaches in;
Prometheus reaches every /metrics."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

K3S = Path(__file__).resolve().parents[2] / "k3s"
OVERLAYS = sorted(p.parent.name for p in (K3S / "overlays").glob("*/kustomization.yaml"))
SERVICES = ["storage", "detector", "recorder", "messenger", "scheduler"]
CONTROL_CLIENT = {"acoustack.io/control-client": "true"}
HUB = "hub"  # the fleet's hub namespace (tested on its own below)


def render(overlay: str) -> list[dict]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(K3S / "overlays" / overlay)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def matches(selector: dict, labels: dict) -> bool:
    """A label selector (matchLabels only, as ours are); {} selects everything."""
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def allowed(policies, namespace: str, target: dict, port: int, source: dict, source_ns: str):
    """Whether the policies let ``source`` (labels, in ``source_ns``) reach ``target``'s
    ``port``: a pod no policy selects takes anything; one that is selected takes what some rule
    lets in."""
    chosen = [
        p
        for p in policies
        if p["metadata"]["namespace"] == namespace and matches(p["spec"]["podSelector"], target)
    ]
    if not chosen:
        return True
    for policy in chosen:
        for rule in policy["spec"].get("ingress", []):
            if rule.get("ports") and port not in [p["port"] for p in rule["ports"]]:
                continue
            for peer in rule.get("from", []):
                # A namespaceSelector ({} here) lets in every namespace; a podSelector alone, its own.
                in_namespace = "namespaceSelector" in peer or source_ns == namespace
                if in_namespace and matches(peer.get("podSelector", {}), source):
                    return True
    return False


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request):
    docs = render(request.param)
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    pods = {
        (d["metadata"]["namespace"], d["metadata"]["name"]): d["spec"]["template"]["metadata"][
            "labels"
        ]
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet")
    }
    return policies, pods


def test_every_pod_is_covered_by_a_default_deny(rendered):
    policies, pods = rendered
    for namespace, name in pods:
        deny = [
            p
            for p in policies
            if p["metadata"]["namespace"] == namespace and p["spec"]["podSelector"] == {}
        ]
        assert deny and all(p["spec"]["policyTypes"] == ["Ingress"] for p in deny), name
        assert "ingress" not in deny[0]["spec"], "the default must let nothing in"


def test_who_reaches_what(rendered):
    policies, pods = rendered
    namespaces = sorted({ns for ns, _ in pods} - {HUB})
    dashboard = {"app.kubernetes.io/name": "dashboard", **CONTROL_CLIENT}
    stranger = {"app.kubernetes.io/name": "something-else"}
    for namespace in namespaces:
        label = {name: pods[(namespace, name)] for ns, name in pods if ns == namespace}

        def reach(target, port, source, source_ns=namespace, label=label, namespace=namespace):
            return allowed(policies, namespace, label[target], port, source, source_ns)

        for service in ("detector", "recorder", "messenger", "scheduler"):
            assert reach("storage", 50051, label[service]), service
        for outsider in (dashboard, stranger, label["postgres"], label["rabbitmq"]):
            assert not reach("storage", 50051, outsider), outsider
        assert reach("scheduler", 50054, dashboard)
        for service in ("storage", "detector", "recorder", "messenger"):
            assert not reach("scheduler", 50054, label[service]), service
        assert not reach("scheduler", 50054, stranger)
        assert reach("postgres", 5432, label["storage"])
        assert not reach("postgres", 5432, label["scheduler"])
        for service in SERVICES:
            assert reach("rabbitmq", 5672, label[service]), service
        assert not reach("rabbitmq", 5672, dashboard)
        for service, port in (("detector", 50052), ("recorder", 50053), ("messenger", 50055)):
            assert reach(service, port, label["scheduler"]), service
            assert not reach(service, port, stranger), service
        # Prometheus, wherever it runs, scrapes every service.
        for service, port in zip(SERVICES, (9151, 9152, 9153, 9155, 9154), strict=True):
            assert reach(service, port, {"app": "prometheus"}, "monitoring"), service
        # Another device of the fleet reaches nothing of this one.
        for other in namespaces:
            if other != namespace:
                assert not reach("storage", 50051, label["scheduler"], other)
                assert not reach("scheduler", 50054, dashboard, other)
                assert not reach("postgres", 5432, label["storage"], other)


def test_the_hub_takes_the_devices_messengers_and_keeps_its_database_to_itself():
    docs = render("fleet")
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    labels = {
        (d["metadata"]["namespace"], d["metadata"]["name"]): d["spec"]["template"]["metadata"][
            "labels"
        ]
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet")
    }
    device = next(ns for ns, _ in labels if ns != HUB)

    def reach(target, port, source, source_ns):
        return allowed(policies, HUB, labels[(HUB, target)], port, source, source_ns)

    hub, messenger = labels[(HUB, "hub")], labels[(device, "messenger")]
    assert reach("postgres", 5432, hub, HUB)
    assert not reach("postgres", 5432, labels[(device, "storage")], device)
    assert not reach("postgres", 5432, labels[(HUB, "mosquitto")], HUB)
    assert reach("mosquitto", 1883, messenger, device)  # a device publishes
    assert reach("mosquitto", 1883, hub, HUB)  # the hub subscribes
    assert not reach("mosquitto", 1883, labels[(device, "storage")], device)
    assert reach("hub", 8090, messenger, device)  # the messenger's HTTP POST
    assert reach("hub", 9160, {"app": "prometheus"}, "monitoring")
    assert not reach("hub", 5432, messenger, device)
