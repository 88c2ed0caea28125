"""The settings page over the real scheduler: every field with its help and value; a change goes
through SetConfig and acts; a bad value is refused naming the field, and nothing is half-applied;
secrets are never shown."""

from __future__ import annotations

import json
import re

from acoustack_dashboard.testing import Client


def form_of(page: str) -> dict[str, str]:
    """The settings form as a browser would send it (inputs and selected options)."""
    form = dict(re.findall(r'<input id="field-[^"]+" name="([^"]+)"[^>]*? value="([^"]*)"', page))
    for name, options in re.findall(
        r'<select id="field-[^"]+" name="([^"]+)"[^>]*>(.*?)</select>', page, re.S
    ):
        chosen = re.search(r'<option (?:value="([^"]*)" )?selected>([^<]*)<', options)
        if chosen:
            form[name] = chosen.group(1) or chosen.group(2)
    form["csrf"] = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    return {k: v.replace("&#34;", '"').replace("&quot;", '"') for k, v in form.items()}


def test_every_field_is_shown_with_its_help_and_value(web: Client, control_target):
    web.login()
    page = web.get("/settings").text
    assert "<code>recording.duration_s</code>" in page
    assert "length of each recording, seconds" in page
    assert 'name="recording.duration_s" value="3.0"' in page
    # The MQTT password's secret is named, and no password is on the page.
    assert 'name="messaging.mqtt_password_secret" value="mqtt_password"' in page
    assert 'type="password"' not in page.split("<form", 2)[-1]


def test_a_change_is_applied_and_a_bad_one_changes_nothing(web: Client, control_target, tmp_path):
    web.login()
    form = form_of(web.get("/settings").text)
    form["recording.interval_s"] = "20"
    reply = web.post("/settings", form)
    assert reply.status == 303 and reply.headers["Location"] == "/settings?saved=1"
    assert json.loads((tmp_path / "program.json").read_text())["recording"]["interval_s"] == 20.0
    form = form_of(web.get("/settings").text)
    form["recording.interval_s"] = "30"  # valid, but sent with a bad one: neither applies
    form["recording.duration_s"] = "-1"
    reply = web.post("/settings", form)
    assert reply.status == 400
    assert "recording.duration_s: Input should be greater than 0" in reply.text
    assert 'class="setting refused"' in reply.text and 'value="-1"' in reply.text
    saved = json.loads((tmp_path / "program.json").read_text())["recording"]
    assert saved["interval_s"] == 20.0 and saved["duration_s"] == 3.0


def test_a_password_posted_as_a_setting_is_never_kept_nor_shown(
    web: Client, control_target, tmp_path
):
    """The form takes the configuration's own fields only; a password has none to go in."""
    web.login()
    form = form_of(web.get("/settings").text)
    form["messaging.mqtt_password"] = "hunter2-secret"
    form["recording.interval_s"] = "15"
    reply = web.post("/settings", form)
    assert reply.status == 303, reply.text
    kept = (tmp_path / "program.json").read_text()
    assert json.loads(kept)["recording"]["interval_s"] == 15.0 and "hunter2" not in kept
    assert "hunter2" not in web.get("/settings").text


def test_the_overview_shows_the_scheduler_status_and_starts_and_stops(web: Client, control_target):
    web.login()
    page = web.get("/")
    assert page.status == 200 and "No deployment is active" in page.text
    # The shipped defaults: a free-space floor, the least valuable deleted first.
    assert (
        'Retention <a id="retention" href="/files">on: 1024 MB kept free (the least valuable '
        "deleted first), the best 5 of each species kept" in page.text
    )
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    bad = web.post("/deployment/start", {"csrf": csrf, "name": "meadow", "latitude": "north"})
    assert bad.status == 400 and "latitude:" in bad.text
    reply = web.post("/deployment/start", {"csrf": csrf, "name": "meadow", "latitude": "52.2",
                                           "longitude": "0.12", "skip_checks": "on"})  # fmt: skip
    assert reply.status == 303
    page = web.get("/?done=started").text
    assert "Deployment started." in page and 'class="deployment-name">meadow<' in page
    # No worker runs in this test, so the flush cannot finish: the stop says what was left.
    reply = web.post("/deployment/stop", {"csrf": csrf, "flush_timeout_s": "1"})
    assert reply.status == 200
    assert "Stopped, but not everything in flight finished in time" in reply.text
    assert "No deployment is active" in web.get("/").text


def test_the_checks_show_each_components_verdict(web: Client, control_target):
    web.login()
    reply = web.post("/settings/check", {"csrf": web.csrf("/settings")})
    assert reply.status == 200
    checks = reply.text.split('<section id="checks">', 1)[1].split("</section>", 1)[0]
    rows = re.findall(r"<tr><td>([^<]+)</td><td class=\"(ok|bad)\">(ok|failed)</td>", checks)
    assert rows, checks
    assert any(
        component.startswith("storage") and verdict == "ok" for component, _, verdict in rows
    )
