"""Who may see and steer the device: one password (never a default one), sessions, CSRF tokens and
a login that slows down an attacker guessing.

The password is DASHBOARD_PASSWORD when set; otherwise one is generated at the first start, printed
once in the log and kept in the data volume (``password``, readable by the service alone), so a
restart keeps it and the user can read it again from there.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("acoustack_dashboard")

GENERATED_LOGIN_FILE = "password"
SESSION_COOKIE = "acoustack_session"
LOGIN_COOKIE = "acoustack_login"


def _digest(password: str, salt: bytes) -> bytes:
    # The digest never leaves this process (the generated password itself is in the data volume,
    # for the user to read), so a slow key-derivation function would protect nothing: guessing is
    # slowed by the LoginThrottle. A salted SHA-256 compared in constant time is enough, and spares
    # the 16 MB a scrypt would take at every login on a Pi.
    return hashlib.sha256(salt + password.encode("utf-8")).digest()


@dataclass
class Password:
    salt: bytes
    digest: bytes

    @classmethod
    def of(cls, password: str) -> Password:
        salt = secrets.token_bytes(16)
        return cls(salt, _digest(password, salt))

    def matches(self, attempt: str) -> bool:
        return hmac.compare_digest(_digest(attempt, self.salt), self.digest)


def load_password(given: str, data_dir: Path) -> Password:
    """The configured password, else the kept one, else a new one (logged this once)."""
    if given:
        return Password.of(given)
    path = data_dir / GENERATED_LOGIN_FILE
    if path.exists():
        log.info("login password: kept in %s (set DASHBOARD_PASSWORD to choose one)", path)
        return Password.of(path.read_text().strip())
    password = secrets.token_urlsafe(12)
    data_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(password + "\n")
    # The one time it is shown: a generated password is useless unless the user can learn it.
    log.warning(
        "login password generated: %s (shown this once; kept in %s; set DASHBOARD_PASSWORD to "
        "choose your own)",
        password,
        path,
    )
    return Password.of(password)


@dataclass
class Session:
    csrf: str
    expires_at: float


@dataclass
class Sessions:
    """Sessions in memory: a restart signs everyone out, which is what a device restart should do."""

    lifetime_s: float = 12 * 3600
    _sessions: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        session = Session(secrets.token_urlsafe(32), time.monotonic() + self.lifetime_s)
        with self._lock:
            now = time.monotonic()
            for stale in [t for t, s in self._sessions.items() if s.expires_at < now]:
                del self._sessions[stale]
            self._sessions[token] = session
        return token, session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            session = self._sessions.get(token)
            if session is None or session.expires_at < time.monotonic():
                self._sessions.pop(token, None)
                return None
            return session

    def close(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)


def same_token(expected: str, given: str | None) -> bool:
    return bool(expected) and given is not None and hmac.compare_digest(expected, given)


@dataclass
class LoginThrottle:
    """Failed logins per client address. The first ``free_failures`` cost only ``failure_delay_s``;
    after that each client waits 2, 4, 8 … seconds (at most ``max_wait_s``) before it may try
    again, a correct password included."""

    free_failures: int = 3
    failure_delay_s: float = 0.5
    max_wait_s: float = 300.0
    forget_after_s: float = 3600.0
    _failures: dict[str, tuple[int, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_s(self, client: str) -> float:
        """How long ``client`` must still wait before its next attempt (0: it may try now)."""
        with self._lock:
            count, last = self._failures.get(client, (0, 0.0))
        if count < self.free_failures:
            return 0.0
        locked_for = min(2.0 ** (count - self.free_failures + 1), self.max_wait_s)
        return max(0.0, last + locked_for - time.monotonic())

    def failed(self, client: str) -> None:
        with self._lock:
            now = time.monotonic()
            if len(self._failures) > 10_000:  # bounded: forget the oldest clients first
                for stale in sorted(self._failures, key=lambda c: self._failures[c][1])[:1000]:
                    del self._failures[stale]
            count, last = self._failures.get(client, (0, now))
            if now - last > self.forget_after_s:
                count = 0
            self._failures[client] = (count + 1, now)
        time.sleep(self.failure_delay_s)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)
