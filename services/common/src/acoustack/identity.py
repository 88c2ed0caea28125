"""A device's stable identity: the Raspberry Pi's serial, else a network MAC, else an id made once
and kept in the data volume. The same box keeps the same id across reboots and reinstalls of the
containers, so a fleet's records stay attributable."""

from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

CPUINFO = Path("/proc/cpuinfo")
DEVICE_TREE_SERIAL = Path("/sys/firmware/devicetree/base/serial-number")
NET = Path("/sys/class/net")
ID_FILE_NAME = "device-id"

_SERIAL = re.compile(r"^Serial\s*:\s*([0-9a-fA-F]+)\s*$", re.MULTILINE)


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
    """The first physical interface's MAC, in a stable order (wired before wireless)."""
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


def stored_id(data_dir: Path) -> str:
    """An id made on first use and kept in the data volume."""
    path = data_dir / ID_FILE_NAME
    try:
        existing = path.read_text().strip()
        if existing:
            return existing
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    made = uuid.uuid4().hex
    temp = path.with_suffix(".partial")
    temp.write_text(made + "\n")
    temp.replace(path)
    log.info("made a new device id %s in %s", made, path)
    return made


def device_id(
    data_dir: Path,
    *,
    cpuinfo: Path = CPUINFO,
    device_tree: Path = DEVICE_TREE_SERIAL,
    net: Path = NET,
) -> str:
    serial = pi_serial(cpuinfo, device_tree)
    if serial:
        return f"pi-{serial}"
    mac = mac_address(net)
    if mac:
        return f"mac-{mac}"
    return f"id-{stored_id(data_dir)}"
