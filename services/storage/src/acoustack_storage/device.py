"""The device's identity: storage owns it, every other service learns it (Store.GetDevice).

It is chosen once: the id the database keeps, else the copy in storage's data volume, else the id
the newest stored recording carries (a device whose services each kept their own id before storage
owned it keeps the recorder's, which its recordings and their GUANO already carry), else the
hardware's (a Raspberry Pi's serial, a physical network interface's MAC), else a new one. Then
both places hold it, so re-creating either volume (Postgres's or storage's own) keeps the id; a
container's virtual MAC never decides, because only the owner chooses.

Domain logic: the repository and the folder come in; no transport.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from acoustack import identity
from acoustack_storage.repository import PostgresStore

log = logging.getLogger(__name__)


class DeviceIdentity:
    def __init__(self, repository: PostgresStore, data_dir: Path | None = None) -> None:
        self.repository = repository
        self.data_dir = data_dir
        self._device_id: str | None = None
        self._lock = threading.Lock()

    def get(self) -> str:
        """The id, established on first use (raises UnavailableError while the database is)."""
        with self._lock:
            if self._device_id is None:
                self._device_id = self._establish()
            return self._device_id

    def _establish(self) -> str:
        kept = self.repository.device_id()
        copy = identity.read_id_file(self.data_dir) if self.data_dir is not None else None
        chosen = (
            kept
            or copy
            or self.repository.newest_recording_device_id()
            or identity.hardware_id()
            or identity.new_id()
        )
        if kept is None:
            chosen = self.repository.keep_device_id(chosen)
            log.info(
                "device id %s kept in the database (%s)",
                chosen,
                "from storage's data volume" if copy == chosen else "chosen now",
            )
        elif copy is not None and copy != kept:
            log.warning(
                "the device id copy in %s (%s) differs from the database's (%s): the database's "
                "wins and the copy is rewritten",
                self.data_dir, copy, kept,
            )  # fmt: skip
        if self.data_dir is not None and copy != chosen:
            try:
                identity.write_id_file(self.data_dir, chosen)
            except OSError as exc:  # the database still holds it; say that the copy is missing
                log.warning(
                    "cannot keep a copy of the device id in %s (%s): losing the database volume "
                    "would then change the id",
                    self.data_dir, exc,
                )  # fmt: skip
        return chosen
