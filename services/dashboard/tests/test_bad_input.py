"""Bad input against the real dashboard over real storage: unknown ids get a 404 page, paths that
leave the recordings volume are refused, wrong passwords are refused and slowed, and no write goes
through without the session's CSRF token."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from acoustack.testing import factories
from acoustack_dashboard.testing import PASSWORD, Client


def test_no_page_shows_without_a_login(web: Client, filed_recording):
    for path in ("/", "/detections", f"/recordings/{filed_recording.recording.id}",
                 f"/recordings/{filed_recording.recording.id}/audio.wav?expansion=1"):  # fmt: skip
        reply = web.get(path)
        assert reply.status == 303 and reply.headers["Location"].startswith("/login?next=")


def test_a_wrong_password_is_refused_and_repeated_failures_are_slowed(web: Client):
    started = time.monotonic()
    for _ in range(3):
        reply = web.login("not the password")
        assert reply.status == 401 and "Wrong password" in reply.text
    assert time.monotonic() - started >= 3 * 0.5, "each failure costs its delay"
    # After three failures, the client waits, even with the right password.
    reply = web.login(PASSWORD)
    assert reply.status == 429
    assert int(reply.headers["Retry-After"]) >= 1
    assert "wait" in reply.text
    assert web.get("/detections").status == 303, "no session was opened"


def test_the_right_password_opens_a_session_with_a_strict_http_only_cookie(web: Client):
    reply = web.login()
    assert reply.status == 303 and reply.headers["Location"] == "/"
    session = next(c for c in reply.headers.get_all("Set-Cookie") if "acoustack_session=" in c)
    assert "HttpOnly" in session and "SameSite=Strict" in session
    assert "Secure" in session  # the loopback counts as a secure origin
    assert web.get("/detections").status == 200


def test_a_login_without_the_forms_token_is_refused(web: Client):
    reply = web.post("/login", {"password": PASSWORD, "csrf": "forged"})
    assert reply.status == 403
    assert "acoustack_session" not in web.cookies


def test_a_write_without_the_sessions_csrf_token_is_refused(web: Client):
    web.login()
    reply = web.post("/deployment/stop", {"csrf": "forged"})
    assert reply.status == 403 and "CSRF" in reply.text
    reply = web.post("/deployment/start", {"name": "x"})
    assert reply.status == 403


def test_an_unknown_recording_gets_a_404_page(web: Client, filed_recording):
    web.login()
    missing = str(uuid.uuid4())
    for path in (f"/recordings/{missing}", f"/recordings/{missing}/spectrogram.png",
                 f"/recordings/{missing}/audio.wav", "/recordings/not-an-id"):  # fmt: skip
        reply = web.get(path)
        assert reply.status == 404, path
        assert reply.headers["Content-Type"].startswith("text/html")
        assert "Not found" in reply.text
    assert missing in web.get(f"/recordings/{missing}").text
    assert web.get("/no/such/page").status == 404


def test_a_path_traversal_in_a_static_file_is_refused(web: Client):
    for path in ("/static/../../../../etc/passwd", "/static/%2e%2e/%2e%2e/views.py",
                 "/static/..%2f..%2fviews.py"):  # fmt: skip
        reply = web.get(path)
        assert reply.status in (403, 404), path
        assert b"root:" not in reply.body and b"import" not in reply.body
    assert web.get("/static/style.css").status == 200


def test_a_stored_path_outside_the_recordings_volume_is_never_opened(
    web: Client, store_client, recordings_root: Path, tmp_path: Path
):
    secret = tmp_path / "outside.wav"
    secret.write_bytes(b"RIFF not for the dashboard")
    deployment = store_client.start_deployment("elsewhere")
    for path in (str(secret), str(recordings_root / ".." / "outside.wav")):
        recording = factories.recording(deployment.id, path=path)
        store_client.store_recording(recording)
        web.login()
        for suffix in ("/audio.wav", "/download", "/spectrogram.png"):
            reply = web.get(f"/recordings/{recording.id}{suffix}")
            assert reply.status == 403, (path, suffix)
            assert "outside the recordings volume" in reply.text
            assert b"not for the dashboard" not in reply.body
        page = web.get(f"/recordings/{recording.id}")
        assert page.status == 200 and "outside the recordings volume" in page.text


def test_a_symbolic_link_out_of_the_volume_is_refused(
    web: Client, store_client, recordings_root: Path, tmp_path: Path
):
    target = tmp_path / "elsewhere.wav"
    target.write_bytes(b"RIFF private")
    link = recordings_root / "link.wav"
    link.symlink_to(target)
    recording = factories.recording(store_client.start_deployment("x").id, path=str(link))
    store_client.store_recording(recording)
    web.login()
    reply = web.get(f"/recordings/{recording.id}/download")
    assert reply.status == 403 and b"private" not in reply.body


@pytest.mark.parametrize(
    ("query", "field"),
    [("min_score=lots", "min_score"), ("min_score=2", "min_score"), ("from=yesterday", "from"),
     ("deployment=42", "deployment"), ("page=garbage", "page_token")],
)  # fmt: skip
def test_a_bad_filter_is_refused_naming_the_field(web: Client, filed_recording, query, field):
    web.login()
    reply = web.get(f"/detections?{query}")
    assert reply.status == 400
    assert f"{field}:" in reply.text


def test_an_unknown_playback_speed_is_refused_naming_it(web: Client, filed_recording):
    web.login()
    reply = web.get(f"/recordings/{filed_recording.recording.id}/audio.wav?expansion=3")
    assert reply.status == 400 and "expansion:" in reply.text


def test_public_pages_show_without_a_login_but_every_change_still_needs_one(
    storage_target, recordings_root, tmp_path, filed_recording
):
    from acoustack_dashboard.settings import DashboardSettings
    from acoustack_dashboard.wiring import Dashboard

    settings = DashboardSettings(
        storage_target=storage_target, control_target="127.0.0.1:9", public_pages=True,
        recordings_root=recordings_root, data_dir=tmp_path / "public", password=PASSWORD,
        http_host="127.0.0.1", http_port=0,
    )  # fmt: skip
    running = Dashboard(settings).start()
    try:
        web = Client(running.server.port)
        rid = filed_recording.recording.id
        assert web.get("/detections").status == 200
        assert web.get(f"/recordings/{rid}").status == 200
        assert web.get(f"/recordings/{rid}/audio.wav?expansion=10").status == 200
        assert web.post("/deployment/stop", {"csrf": ""}).status == 403
        assert web.post("/settings", {"recording.duration_s": "9"}).status == 403
        assert 'action="/deployment/stop"' not in web.get(f"/recordings/{rid}").text
    finally:
        running.stop()


def test_the_scheduler_away_is_a_503_page_naming_it_and_other_pages_still_work(
    web: Client, filed_recording
):
    web.login()
    reply = web.get("/")
    assert reply.status == 503 and "Unavailable" in reply.text
    assert "127.0.0.1:9" in reply.text  # which service did not answer
    assert web.get("/detections").status == 200  # storage's pages do not need the scheduler
