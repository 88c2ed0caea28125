"""Hub mode: the dashboard's fleet pages over a real hub process (on Postgres), fed as devices
feed it: the devices with their state and last seen, a device's detail, species over time."""

from __future__ import annotations

import datetime as dt
import time
import urllib.request
from collections.abc import Iterator

import pytest

from acoustack_dashboard.settings import DashboardSettings
from acoustack_dashboard.testing import PASSWORD, Client
from acoustack_dashboard.wiring import Dashboard
from acoustack_hub.testing import detection_message, heartbeat_message


def _post(hub, device_id: str, message) -> None:
    request = urllib.request.Request(
        f"{hub.url}/messages",
        data=message.content.encode(),
        headers={"Idempotency-Key": str(message.id), "X-Device-Id": device_id,
                 "User-Agent": "acoustack-messenger/0.1.0"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


@pytest.fixture
def hub(hub_replicas):
    replica = hub_replicas[0]
    replica.env |= {"HUB_HEARTBEAT_INTERVAL_S": "1", "HUB_SILENT_INTERVALS": "1",
                    "HUB_ALARM_CHECK_S": "0.3"}  # fmt: skip
    return replica.start()


@pytest.fixture
def fleet_web(hub, storage_target: str, tmp_path) -> Iterator[Client]:
    settings = DashboardSettings(
        storage_target=storage_target,
        control_target="127.0.0.1:9",
        recordings_root=tmp_path,
        data_dir=tmp_path / "dashboard-data",
        password=PASSWORD,
        http_host="127.0.0.1",
        http_port=0,
        hub_url=hub.url,
    )
    running = Dashboard(settings).start()
    client = Client(running.server.port)
    client.login()
    yield client
    running.stop()


def test_the_fleet_pages_show_each_device_its_detail_and_species_over_time(hub, fleet_web):
    night = dt.datetime(2026, 6, 1, 22, 0, tzinfo=dt.UTC)
    _post(hub, "meadow-01", heartbeat_message("meadow-01", free_storage=12.5))
    _post(hub, "meadow-02", heartbeat_message("meadow-02", status="degraded: disk full"))
    _post(hub, "meadow-01", detection_message(1, created_at=night, species="Myotis mystacinus"))
    _post(hub, "meadow-02", detection_message(2, created_at=night + dt.timedelta(days=1),
                                              species="Myotis mystacinus"))  # fmt: skip

    page = fleet_web.get("/fleet")
    assert page.status == 200
    assert "meadow-01" in page.text and "meadow-02" in page.text
    assert "degraded: disk full" in page.text and "acoustack 0.1.0" in page.text
    assert '<a href="/fleet" aria-current="page">Fleet</a>' in page.text  # in the navigation

    detail = fleet_web.get("/fleet/devices/meadow-01")
    assert detail.status == 200
    assert "free_storage" in detail.text and "12.5" in detail.text
    assert detail.text.count("Myotis mystacinus") == 2  # its two detections
    assert "2026-06-01 22:00:00 UTC" in detail.text

    species = fleet_web.get("/fleet/species")
    assert species.status == 200
    row = species.text.split("Myotis mystacinus")[1].split("</tr>")[0]
    # two devices, four detections, two a day
    assert [c.split("</td>")[0] for c in row.split("<td>")[1:]] == ["2", "4", "2", "2"]
    assert "2026-06-01" in species.text and "2026-06-02" in species.text

    # A device silent past its intervals shows its open alarm.
    time.sleep(2.5)
    assert "silent" in fleet_web.get("/fleet").text

    assert fleet_web.get("/fleet/devices/elsewhere").status == 404
    bad = fleet_web.get("/fleet/species?bucket=week")
    assert bad.status == 400 and "bucket" in bad.text


def test_without_the_hub_the_fleet_pages_say_so(hub, fleet_web):
    hub.stop()
    page = fleet_web.get("/fleet")
    assert page.status == 503 and "DASHBOARD_HUB_URL" in page.text
