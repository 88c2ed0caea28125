"""Apply a service's numbered migrations at start: in order, each once, all in one transaction.

Plumbing shared by the services that own a Postgres schema (storage, the hub): each keeps its
files in its own ``migrations`` package. An advisory lock (one key per service) keeps two
replicas starting together from applying the same step twice. A migration that was applied and
then edited is refused (its checksum no longer matches): schema changes go in a new numbered
file. A migration is SQL (``NNNN_name.sql``) or, for a step that needs the shared library's own
rules (repairing rows the read side refuses), Python (``NNNN_name.py``, defining
``migrate(conn)``), run in the same transaction.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from acoustack.errors import FailedPreconditionError

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(sql|py)$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str  # the file's text: SQL, or Python source when ``kind`` is "py"
    kind: str = "sql"

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def apply(self, conn: Any) -> None:
        if self.kind == "sql":
            conn.execute(self.sql)
            return
        namespace: dict = {"__name__": f"migration_{self.version:04d}_{self.name}"}
        exec(compile(self.sql, f"{self.version:04d}_{self.name}.py", "exec"), namespace)
        namespace["migrate"](conn)


def bundled_migrations(package: str) -> list[Migration]:
    """The migrations kept as files in ``package`` (a service's own migrations package)."""
    found = []
    for entry in resources.files(package).iterdir():
        match = _NAME.match(entry.name)
        if match:
            text = entry.read_text(encoding="utf-8")
            found.append(Migration(int(match[1]), match[2], text, kind=match[3]))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return found


def apply_migrations(conn: Any, migrations: list[Migration], lock_key: int) -> list[int]:
    """Bring the database up to date; returns the versions applied now. ``lock_key``: any
    constant every replica of the service shares."""
    applied_now = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {
            row[0]: row[1]
            for row in conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
        }
        for migration in migrations:
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise FailedPreconditionError(
                        f"migration {migration.version:04d}_{migration.name} was changed after it "
                        "was applied to this database",
                        help="never edit an applied migration; add a new numbered file instead",
                    )
                continue
            log.info("applying migration %04d_%s", migration.version, migration.name)
            migration.apply(conn)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
            applied_now.append(migration.version)
    return applied_now
