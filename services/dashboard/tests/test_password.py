"""No default password: one is generated at the first start, shown once in the log, kept in the
data volume for the user (and only the service) to read, and never logged again."""

from __future__ import annotations

import logging
import stat

from acoustack_dashboard.auth import GENERATED_LOGIN_FILE, load_password


def test_a_generated_password_is_logged_once_and_kept(tmp_path, caplog):
    data = tmp_path / "data"
    with caplog.at_level(logging.INFO, logger="acoustack_dashboard"):
        first = load_password("", data)
    kept = (data / GENERATED_LOGIN_FILE).read_text().strip()
    assert len(kept) >= 16
    assert stat.S_IMODE((data / GENERATED_LOGIN_FILE).stat().st_mode) == 0o600
    assert kept in caplog.text and "shown this once" in caplog.text
    assert first.matches(kept) and not first.matches(kept + "x") and not first.matches("")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="acoustack_dashboard"):
        again = load_password("", data)
    assert again.matches(kept)
    assert kept not in caplog.text and str(data / GENERATED_LOGIN_FILE) in caplog.text


def test_two_devices_get_different_passwords(tmp_path):
    load_password("", tmp_path / "a")
    load_password("", tmp_path / "b")
    assert (tmp_path / "a" / GENERATED_LOGIN_FILE).read_text() != (
        tmp_path / "b" / GENERATED_LOGIN_FILE
    ).read_text()


def test_a_configured_password_is_used_and_nothing_is_written_or_logged(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="acoustack_dashboard"):
        password = load_password("chosen by the user", tmp_path)
    assert password.matches("chosen by the user")
    assert not (tmp_path / GENERATED_LOGIN_FILE).exists()
    assert "chosen by the user" not in caplog.text
