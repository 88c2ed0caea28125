"""A device's stable identity, and how a service learns it.

Storage owns the id (``acoustack_storage.device``): it chooses it once, from the Raspberry Pi's
serial, else a physical network interface's MAC, else an id made once, and keeps it. Every other
service asks storage (``LearnedIdentity``) and keeps a copy in its own data volume, so that it can
go on working through a storage outage, even right after its own restart. The same box therefore
reports one id in every service, across reboots and re-created containers, so a fleet's records
stay attributable.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from acoustack.errors import UnavailableError

log = logging.getLogger(__name__)

CPUINFO = Path("/proc/cpuinfo")
DEVICE_TREE_SERIAL = Path("/sys/firmware/devicetree/base/serial-number")
NET = Path("/sys/class/net")
ID_FILE_NAME = "device-id"

_SERIAL = re.compile(r"^Serial\s*:\s*([0-9a-fA-F]+)\s*$", re.MULTILINE)
_VALID = re.compile(r"^(pi|mac|id)-[0-9a-z]{1,64}$")


def pi_serial(cpuinfo: Path = CPUINFO, device_tree: Path = DEVICE_TREE_SERIAL) -> str | None:
    for source in (device_tree, cpuinfo):
        try:
            text = source.read_text(errors="replace")
        except OSError:
            continue
        match = (
            _SERIAL.search(text)
            if source == cpuinfo
            else re.match(r"^([0-9a-fA-F]+)", text.strip("\0 \n"))
        )
        if match and set(match[1]) != {"0"}:
            return match[1].lower()
    return None


def mac_address(net: Path = NET) -> str | None:
    """The first physical interface's MAC, in a stable order (wired before wireless). A virtual
    interface (a container's veth, a bridge) has no ``device`` link and is never taken."""
    try:
        interfaces = sorted(p for p in net.iterdir() if p.name != "lo")
    except OSError:
        return None
    for interface in sorted(
        interfaces, key=lambda p: (not p.name.startswith(("eth", "en")), p.name)
    ):
        try:
            mac = (interface / "address").read_text().strip().lower()
        except OSError:
            continue
        if mac and mac != "00:00:00:00:00:00" and (interface / "device").exists():
            return mac.replace(":", "")
    return None


def hardware_id(
    *, cpuinfo: Path = CPUINFO, device_tree: Path = DEVICE_TREE_SERIAL, net: Path = NET
) -> str | None:
    """The id the hardware gives: ``pi-<serial>``, else ``mac-<mac>``; None when it gives none."""
    serial = pi_serial(cpuinfo, device_tree)
    if serial:
        return f"pi-{serial}"
    mac = mac_address(net)
    return f"mac-{mac}" if mac else None


def new_id() -> str:
    return f"id-{uuid.uuid4().hex}"


def is_device_id(text: str) -> bool:
    return bool(_VALID.match(text))


_LEGACY = re.compile(r"^[0-9a-f]{32}$")


def read_id_file(folder: Path) -> str | None:
    """The id kept in ``folder``, or None when there is none (or it is not an id). Files written
    before storage owned the id hold the bare hex of a made id."""
    try:
        text = (Path(folder) / ID_FILE_NAME).read_text().strip()
    except OSError:
        return None
    if _LEGACY.match(text):
        return f"id-{text}"
    return text if is_device_id(text) else None


def write_id_file(folder: Path, device_id: str) -> None:
    """Keep ``device_id`` in ``folder`` (written whole: a temporary name, then a rename)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".{ID_FILE_NAME}.partial"
    temp.write_text(device_id + "\n")
    temp.replace(folder / ID_FILE_NAME)


class LearnedIdentity:
    """The device id as a service other than storage knows it: asked of storage, kept in the
    service's data volume for when storage cannot be asked.

    ``ask`` returns the id storage gives (raising UnavailableError while it cannot be reached).
    While only the copy is known, storage is asked again at most every ``retry_s``.
    """

    def __init__(
        self,
        ask: Callable[[], str],
        data_dir: Path | None,
        *,
        retry_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ask = ask
        self.data_dir = data_dir
        self.retry_s = retry_s
        self._clock = clock
        self._learned: str | None = None  # what storage said
        self._copy: str | None = None  # what the data volume held, while storage did not answer
        self._next_ask = float("-inf")
        self._lock = threading.Lock()

    def get(self) -> str:
        with self._lock:
            if self._learned is not None:
                return self._learned
            if self._copy is None or self._clock() >= self._next_ask:
                try:
                    learned = self._ask()
                except UnavailableError as exc:
                    return self._from_copy(exc)
                self._learned = learned
                if self.data_dir is not None and read_id_file(self.data_dir) != learned:
                    try:
                        write_id_file(self.data_dir, learned)
                    except OSError as write_error:  # the copy is a convenience, never a stop
                        log.warning(
                            "cannot keep the device id in %s: %s", self.data_dir, write_error
                        )
                log.info("device id %s (from storage)", learned)
                return learned
            return self._copy

    def _from_copy(self, exc: UnavailableError) -> str:
        self._next_ask = self._clock() + self.retry_s
        if self._copy is None and self.data_dir is not None:
            self._copy = read_id_file(self.data_dir)
            if self._copy is not None:
                log.warning("storage unreachable; device id %s from %s", self._copy, self.data_dir)
        if self._copy is None:
            raise UnavailableError(
                f"the device id is not known yet: storage owns it and cannot be reached ({exc})",
                help="start storage; the id is kept here once it has been learned",
            ) from None
        return self._copy
