"""Every container compose runs is hardened: read-only root filesystem, no capabilities, no
privilege gained through setuid, a memory limit. (The compose smoke test runs the stack so.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def services() -> dict:
    """compose.yaml as compose reads it: its YAML merge keys (<<: *hardening) are resolved by the
    YAML parser, as compose's own does (`docker compose config` would need the engine)."""
    return yaml.safe_load((REPO / "compose" / "compose.yaml").read_text())["services"]


@pytest.mark.parametrize("name", ["postgres", "rabbitmq", "storage", "detector", "recorder",
                                  "messenger", "scheduler", "mosquitto"])  # fmt: skip
def test_every_service_is_hardened(name):
    service = services()[name]
    assert service["read_only"] is True, name
    assert service["cap_drop"] == ["ALL"], name
    assert "no-new-privileges:true" in service["security_opt"], name
    assert service["mem_limit"], name
    assert "/tmp" in [t.split(":")[0] for t in service["tmpfs"]], f"{name}: no writable /tmp"
    assert "privileged" not in service and "cap_add" not in service, name


def test_the_microphone_overlay_adds_a_device_not_privileges():
    overlay = yaml.safe_load((REPO / "compose" / "compose.microphone.yaml").read_text())
    recorder = overlay["services"]["recorder"]
    assert "privileged" not in recorder and "cap_add" not in recorder
    assert set(services()) >= {"recorder"} and set(recorder) == {"devices", "group_add"}


def test_the_hub_on_one_machine_is_hardened_and_its_broker_has_the_hub_limits():
    hub = yaml.safe_load((REPO / "compose" / "hub.yaml").read_text())["services"]
    assert {"postgres", "mosquitto", "hub-1", "hub-2", "dashboard"} <= set(hub)
    assert hub["dashboard"]["environment"]["DASHBOARD_HUB_URL"] == "http://hub-1:8090"
    for name, service in hub.items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["mem_limit"], name
        assert "privileged" not in service and "cap_add" not in service, name
    mounted = [v for v in hub["mosquitto"]["volumes"] if "broker.conf" in v]
    source = mounted[0].split(":")[0]
    assert (REPO / "compose" / source).resolve() == REPO / "services" / "hub" / "broker.conf"
    # Each replica keeps its own MQTT session: distinct client ids.
    assert (
        hub["hub-1"]["environment"]["HUB_CLIENT_ID"] != hub["hub-2"]["environment"]["HUB_CLIENT_ID"]
    )
