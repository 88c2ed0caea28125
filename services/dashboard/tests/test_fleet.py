"""Hub mode: the dashboard's fleet pages over a real hub process (on Postgres), fed as devices
feed it: the devices with their state and last seen, a device's detail, species over time."""

from __future__ import annotations

import datetime as dt
import itertools
import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from acoustack import schema
from acoustack_dashboard.fleet import fleet_map
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
    assert "<td>silent</td>" in fleet_web.get("/fleet").text

    assert fleet_web.get("/fleet/devices/elsewhere").status == 404
    bad = fleet_web.get("/fleet/species?bucket=week")
    assert bad.status == 400 and "bucket" in bad.text


def test_without_the_hub_the_fleet_pages_say_so(hub, fleet_web):
    hub.stop()
    page = fleet_web.get("/fleet")
    assert page.status == 503 and "DASHBOARD_HUB_URL" in page.text


def _placed(name: str, latitude: float, longitude: float) -> schema.HeartbeatDeployment:
    return schema.HeartbeatDeployment(
        id=uuid.uuid4(), name=name, latitude=latitude, longitude=longitude
    )


def test_the_fleet_map_places_each_device_from_its_heartbeats_deployment(hub, fleet_web):
    _post(hub, "fen", heartbeat_message("fen", deployment=_placed("fen east", 52.40, 0.30)))
    _post(hub, "moor", heartbeat_message("moor", status="degraded: disk full",
                                         deployment=_placed("high moor", 54.30, -2.10)))  # fmt: skip
    _post(hub, "shed", heartbeat_message("shed"))  # an older messenger: no deployment
    page = fleet_web.get("/fleet")
    assert page.status == 200
    svg = page.text.split('<svg id="fleet-map"')[1].split("</svg>")[0]
    assert svg.count('<a class="marker"') == 2 and 'data-device="shed"' not in svg
    assert (
        '<a class="marker" href="/fleet/devices/moor" data-device="moor" data-state="degraded">'
        in svg
    )
    assert "<title>fen — fen east (ok; 52.4, 0.3)</title>" in svg
    # The graticule is labelled in degrees, both hemispheres of longitude in view.
    assert ">2°W<" in svg and ">1°E<" in svg and ">54.0°N<" in svg and ">0°<" in svg
    unplaced = page.text.split('class="unplaced"')[1].split("</p>")[0]
    assert '<a href="/fleet/devices/shed">shed</a>' in unplaced


def _row(device_id: str, latitude: float | None, longitude: float | None) -> dict:
    return {"device_id": device_id, "latitude": latitude, "longitude": longitude}


def test_the_map_is_fitted_to_the_devices_west_to_east_and_south_to_north():
    rows = [_row("north", 60.0, 5.0), _row("south", 50.0, 4.0), _row("east", 55.0, 10.0),
            _row("nowhere", None, None)]  # fmt: skip
    drawn = fleet_map(rows)
    at = {m["device_id"]: (m["x"], m["y"]) for m in drawn.markers}
    assert at["south"][0] < at["north"][0] < at["east"][0]  # west to east: x grows
    assert at["north"][1] < at["east"][1] < at["south"][1]  # south to north: y shrinks
    x, y, w, h = drawn.plot
    # Within the plot, with a margin all round, the frame filled.
    assert all(x + 10 < mx < x + w - 10 and y + 10 < my < y + h - 10 for mx, my in at.values())
    assert (w, h) == (760, 460)
    # A degree east-west is cos(55°), the middle latitude's, of a degree north-south.
    per_lon = (at["east"][0] - at["south"][0]) / (10.0 - 4.0)
    per_lat = (at["south"][1] - at["north"][1]) / (60.0 - 50.0)
    assert per_lon / per_lat == pytest.approx(0.5736, abs=0.001)
    assert [m["device_id"] for m in drawn.unplaced] == ["nowhere"]
    labels = [label for _, label in drawn.parallels]
    assert labels[0] == "50°N" and labels[-1] == "60°N"
    assert [y for y, _ in drawn.parallels] == sorted((y for y, _ in drawn.parallels), reverse=True)
    xs = [x for x, _ in drawn.meridians]
    assert all(b - a >= 70 for a, b in itertools.pairwise(xs))
    # One device alone is shown with a couple of kilometres around it, finely graduated.
    alone = fleet_map([_row("only", -33.9, 18.4)])
    assert len(alone.markers) == 1 and alone.parallels[0][1].endswith("°S")
    assert "." in alone.meridians[0][1]
    assert fleet_map([_row("nowhere", None, None)]).markers == []
