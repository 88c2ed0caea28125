"""The activity page over real storage and the real scheduler: per-hour counts over a night and a
species × date grid over weeks, both from the store's aggregates, in the deployment's time zone."""

from __future__ import annotations

import datetime as dt
import re

from acoustack import schema
from acoustack.testing import factories
from acoustack_dashboard import pages
from acoustack_dashboard.testing import Client


def cells(page: str, section: str) -> dict[tuple[str, str], int]:
    part = page.split(f'<section id="{section}">', 1)[1].split("</section>", 1)[0]
    return {
        (species, column): int(count)
        for count, species, column in re.findall(
            r'data-count="(\d+)" data-species="([^"]+)" data-column="([^"]+)"', part
        )
    }


def store_night(store_client, deployment, started_at, species_counts):
    recording = factories.recording(deployment.id, started_at=started_at)
    store_client.store_recording(recording)
    detections = [
        factories.detection(n_tags=0, tags=[schema.PredictedTag(
            tag=schema.Tag(key="species", value=species), confidence=0.9)])
        for species, n in species_counts.items() for _ in range(n)
    ]  # fmt: skip
    store_client.store_model_output(
        schema.ModelOutput(
            recording_id=recording.id, model_name="batdetect2", detections=detections
        )
    )


def test_the_night_and_the_weeks_come_from_the_stores_counts(web: Client, store_client,
                                                             control_target):  # fmt: skip
    deployment = store_client.start_deployment("activity")
    night = dt.datetime(2026, 6, 1, 21, 0, tzinfo=dt.UTC)
    store_night(store_client, deployment, night + dt.timedelta(minutes=5), {"Myotis": 3})
    store_night(
        store_client, deployment, night + dt.timedelta(minutes=40), {"Myotis": 1, "Nyctalus": 2}
    )
    store_night(store_client, deployment, night + dt.timedelta(hours=5), {"Nyctalus": 4})  # 02:00
    store_night(store_client, deployment, night - dt.timedelta(days=9), {"Myotis": 7})
    web.login()
    page = web.get("/activity?night=2026-06-01&weeks=2")
    assert page.status == 200
    hourly = cells(page.text, "night")
    assert hourly[("Myotis", "21")] == 4 and hourly[("Nyctalus", "21")] == 2
    assert hourly[("Nyctalus", "02")] == 4 and hourly[("Myotis", "02")] == 0
    assert sum(hourly.values()) == 10, "the detection nine days before is not in this night"
    daily = cells(page.text, "weeks")
    assert daily[("Myotis", "01 Jun")] == 4 and daily[("Nyctalus", "02 Jun")] == 4
    assert daily[("Myotis", "23 May")] == 7
    # The most active species first.
    rows = re.findall(r'<text class="row"[^>]*>([^<]+)<', page.text.split('id="weeks"')[1])
    assert rows == ["Myotis", "Nyctalus"]


def test_a_night_in_another_time_zone_is_its_own_local_hours(
    web: Client, store_client, control_target
):
    deployment = store_client.start_deployment("london")
    store_night(
        store_client, deployment, dt.datetime(2026, 6, 1, 21, 30, tzinfo=dt.UTC), {"Myotis": 2}
    )
    web.login()
    csrf = web.csrf("/settings")
    form = {"csrf": csrf, "recording.timezone": "Europe/London"}
    assert web.post("/settings", form).status == 303
    hourly = cells(web.get("/activity?night=2026-06-01&weeks=1").text, "night")
    assert hourly[("Myotis", "22")] == 2  # 21:30 UTC is 22:30 BST


def test_bad_activity_arguments_are_refused_by_name(web: Client, control_target):
    web.login()
    assert "night:" in web.get("/activity?night=yesterday").text
    assert web.get("/activity?weeks=100").status == 400
    assert "weeks:" in web.get("/activity?weeks=100").text


def test_the_default_night_is_the_one_under_way_or_just_ended():
    assert pages.default_night(dt.datetime(2026, 6, 2, 3, 0)) == dt.date(2026, 6, 1)
    assert pages.default_night(dt.datetime(2026, 6, 2, 13, 0)) == dt.date(2026, 6, 2)
