"""Storage's migrations (``acoustack_storage.migrations``), applied by the shared runner
(``acoustack.migrations``: in order, each once, an edited one refused)."""

from __future__ import annotations

from typing import Any

from acoustack import migrations as runner
from acoustack.migrations import Migration

__all__ = ["Migration", "apply_migrations", "bundled_migrations"]

_LOCK_KEY = 0x61636F75  # "acou": any constant shared by every replica


def bundled_migrations() -> list[Migration]:
    return runner.bundled_migrations("acoustack_storage.migrations")


def apply_migrations(conn: Any, migrations: list[Migration] | None = None) -> list[int]:
    """Bring storage's database up to date; returns the versions applied now."""
    chosen = bundled_migrations() if migrations is None else migrations
    return runner.apply_migrations(conn, chosen, _LOCK_KEY)
