"""The dashboard in a real browser (Debian's chromium, driven by Playwright for Python) against the
real services as local processes (``make dev``'s launcher) with real detections: the bundled bat
recordings replayed, detected by the bundled BatDetect2 and filed by storage.

It signs in, starts a deployment from the overview, sees the first detection arrive live (no
reload), opens one and finds its
spectrogram with boxes, plays the audio as recorded and time-expanded (ten times longer), has a
bad setting refused with the field named, and stops the deployment. In hub mode, against a real
hub, the fleet map's markers are where their coordinates say and open their device. A screenshot
of each page is kept under build/dashboard/."""

from __future__ import annotations

import os
import secrets
import time
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from acoustack import schema
from acoustack.clients import StoreClient
from acoustack.testing.servers import free_port
from acoustack_dashboard.settings import DashboardSettings
from acoustack_dashboard.testing import PASSWORD
from acoustack_dashboard.wiring import Dashboard
from acoustack_devstack import REPO, DevStack, Ports
from acoustack_hub.testing import heartbeat_message
from acoustack_messenger.messengers import HttpMessenger

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = REPO / "build" / "dashboard"
# Chromium as the build machines run it: no sandbox (root), no GPU, and none of the background
# connections a closed network refuses.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture
def password() -> str:
    return secrets.token_urlsafe(16)


@pytest.fixture
def stack(tmp_path: Path, password: str):
    stack = DevStack(
        tmp_path,
        name=f"acoustack_browser_{secrets.token_hex(4)}",
        ports=Ports(*(free_port() for _ in range(6))),
        program_config={"recording": {"duration_s": 1.0, "interval_s": 2.0}},
        extra_environment={"dashboard": {"DASHBOARD_PASSWORD": password}},
    )
    with stack.throwaway():
        yield stack


@pytest.fixture
def page():
    assert Path(CHROMIUM).exists(), (
        f"{CHROMIUM} missing: make chromium (scripts/ensure-chromium.sh)"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
    return value


def test_the_dashboard_in_a_browser(stack: DevStack, page: Page, password: str):
    url = stack.dashboard_url
    page.set_default_timeout(30_000)

    # Sign in: a wrong password is refused first.
    page.goto(url)
    expect(page).to_have_url(f"{url}login?next=/")
    shot(page, "login")
    page.fill('input[name="password"]', "not the password")
    page.click('button:has-text("Sign in")')
    expect(page.locator(".problem")).to_have_text("Wrong password.")
    page.fill('input[name="password"]', password)
    page.click('button:has-text("Sign in")')
    expect(page.locator("h1")).to_contain_text("Overview")
    expect(page.locator("#deployment")).to_contain_text("No deployment is active")

    # Start a deployment from the overview.
    page.fill('#deployment input[name="name"]', "browser meadow")
    page.fill('#deployment input[name="latitude"]', "52.2")
    page.fill('#deployment input[name="longitude"]', "0.12")
    page.check('#deployment input[name="skip_checks"]')
    page.click('button[name="start"]')
    expect(page.locator(".done")).to_have_text("Deployment started.")
    expect(page.locator(".deployment-name")).to_have_text("browser meadow")

    # The overview follows the device live (storage's events, server-sent): the first detection
    # appears without a reload.
    expect(page.locator("#live-state")).to_have_text("live")
    page.evaluate("window.sameDocument = true")  # gone if the page reloaded
    with StoreClient(f"127.0.0.1:{stack.ports.storage}") as store:
        wait_for(lambda: store.list_detections(limit=1), 120, "a detection from the replayed bats")
    expect(page.locator("#last-detection a")).to_be_visible(timeout=30_000)
    assert page.evaluate("document.body.dataset.lastEvent") in (
        "recording.stored", "model_output.stored", "recording.filed", "message.sent",
        "deployment.started",
    )  # fmt: skip
    assert page.evaluate("window.sameDocument === true"), "the page reloaded"
    assert int(page.evaluate("document.body.dataset.refreshed")) >= 1
    for service in ("detector", "recorder", "messenger", "storage"):
        expect(page.locator("table", has_text="health")).to_contain_text(service)
    shot(page, "overview")

    # The detections, and one of them opened.
    page.click('nav a:has-text("Detections")')
    rows = page.locator("table.detections tbody tr")
    expect(rows.first.locator("a")).to_be_visible()
    shot(page, "detections")
    rows.first.locator("a").click()
    expect(page.locator("h1")).to_contain_text("Recording")
    image = page.locator("img#spectrogram")
    expect(image).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.getElementById('spectrogram'); "
        "return i.complete && i.naturalWidth > 0 && i.naturalHeight > 0; }"
    )
    boxes = page.locator("svg.labels g.box")
    assert boxes.count() >= 1
    assert boxes.first.get_attribute("data-label")
    assert page.locator(".axis-y .unit").inner_text() == "kHz"
    assert page.locator(".axis-x .unit").inner_text() == "s"

    # The audio: both load and report a duration; the time-expanded one is ten times longer.
    durations = page.evaluate(
        """() => Promise.all(['audio-realtime', 'audio-expanded'].map(id => new Promise(
               (resolve, reject) => {
                 const a = document.getElementById(id);
                 const done = () => resolve(a.duration);
                 if (a.readyState >= 1) return done();
                 a.addEventListener('loadedmetadata', done, {once: true});
                 a.addEventListener('error', () => reject(id + ': ' + (a.error && a.error.message)),
                                    {once: true});
                 a.load();
               })))"""
    )
    realtime_s, expanded_s = durations
    assert realtime_s == pytest.approx(1.0, rel=0.02)
    assert page.locator("#audio-expanded").get_attribute("data-expansion") == "10"
    assert expanded_s == pytest.approx(10 * realtime_s, rel=0.01)
    played = page.evaluate(
        """async () => { const a = document.getElementById('audio-expanded');
               await a.play();
               await new Promise(r => setTimeout(r, 700));
               const t = a.currentTime; a.pause(); return t; }"""
    )
    assert played > 0, "the time-expanded audio did not play"
    shot(page, "recording")
    page.locator("figure.spectrogram").screenshot(path=str(SCREENSHOTS / "spectrogram.png"))

    # Activity (from the store's counts) and the messages and files.
    page.click('nav a:has-text("Activity")')
    expect(page.locator("#night figcaption")).to_contain_text("detections per hour")
    assert page.locator("#weeks rect.cell").count() >= 1, "today's detections are in the weeks"
    shot(page, "activity")
    page.click('nav a:has-text("Messages")')
    expect(page.locator("#outbox h2")).to_contain_text("unsent")
    expect(page.locator("#outbox")).to_contain_text("dead letters")  # the delivery states
    expect(page.locator("#disk")).to_contain_text("free of")
    shot(page, "files")

    # A bad setting is refused, naming the field; nothing changes.
    page.click('nav a:has-text("Settings")')
    field = page.locator('input[name="recording.duration_s"]')
    expect(field).to_have_value("1.0")
    field.fill("-1")
    page.click('button[name="save"]')
    problem = page.locator("#settings-problem")
    expect(problem).to_contain_text("recording.duration_s")
    expect(problem).to_contain_text("greater than 0")
    expect(page.locator(".setting.refused code")).to_have_text("recording.duration_s")
    shot(page, "settings")
    page.goto(url + "settings")
    expect(page.locator('input[name="recording.duration_s"]')).to_have_value("1.0")

    # Stop the deployment.
    page.click('nav a:has-text("Overview")')
    page.fill('input[name="flush_timeout_s"]', "20")
    page.click('button[name="stop"]')
    expect(page.locator("#deployment")).to_contain_text("No deployment is active", timeout=60_000)
    shot(page, "stopped")


def test_the_fleet_map_in_a_browser(hub_replicas, storage_target: str, page: Page, tmp_path):
    """Hub mode: three placed devices and one that never said where it is, sent to a real hub as
    a device's messenger posts them; the map shows a marker for each placed one where its
    coordinates say, coloured by its state, and clicking one opens that device."""
    hub = hub_replicas[0].start()
    places = {"fen": (52.40, 0.30), "moor": (54.30, -2.10), "coast": (50.70, -1.30)}
    for device_id, (lat, lon) in places.items():
        where = schema.HeartbeatDeployment(
            id=uuid.uuid4(), name=f"{device_id} site", latitude=lat, longitude=lon
        )
        status = "degraded: disk full" if device_id == "moor" else "ok"
        beat = heartbeat_message(device_id, status=status, deployment=where)
        sent = HttpMessenger(f"{hub.url}/messages", device_id=device_id).send_message(beat)
        assert sent.status is schema.ResponseStatus.SUCCESS, sent.content
    shed = HttpMessenger(f"{hub.url}/messages", device_id="shed")
    assert shed.send_message(heartbeat_message("shed")).status is schema.ResponseStatus.SUCCESS

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
    try:
        url = f"http://127.0.0.1:{running.server.port}/"
        page.set_default_timeout(30_000)
        page.goto(url + "fleet")
        page.fill('input[name="password"]', PASSWORD)
        page.click('button:has-text("Sign in")')
        expect(page.locator("h1")).to_have_text("Fleet")
        markers = page.locator("#fleet-map a.marker")
        expect(markers).to_have_count(3)
        centre = {}
        for device_id in places:
            box = page.locator(f'#fleet-map a.marker[data-device="{device_id}"] circle')
            expect(box).to_be_visible()
            b = box.bounding_box()
            centre[device_id] = (b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
        # West to east: moor (2.1°W), coast (1.3°W), fen (0.3°E); south to north: coast, fen, moor.
        assert centre["moor"][0] < centre["coast"][0] < centre["fen"][0]
        assert centre["moor"][1] < centre["fen"][1] < centre["coast"][1]
        colour = "el => getComputedStyle(el).fill"
        moor = page.locator('#fleet-map a.marker[data-device="moor"] circle')
        fen = page.locator('#fleet-map a.marker[data-device="fen"] circle')
        assert moor.evaluate(colour) != fen.evaluate(colour)  # degraded is not drawn as ok
        expect(page.locator('#fleet-map a.marker[data-device="moor"] title')).to_contain_text(
            "moor site"
        )
        expect(page.locator(".unplaced")).to_contain_text("shed")
        shot(page, "fleet-map")

        page.locator('#fleet-map a.marker[data-device="coast"]').click()
        expect(page).to_have_url(url + "fleet/devices/coast")
        expect(page.locator("h1")).to_contain_text("coast")
    finally:
        running.stop()
