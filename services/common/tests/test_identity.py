"""The device's identity: what the hardware gives, and how a service other than storage learns the
id storage owns and keeps it for storage's outages."""

from pathlib import Path

import pytest

from acoustack import identity
from acoustack.errors import UnavailableError

PI_CPUINFO = """processor\t: 0
model name\t: ARMv7 Processor rev 3 (v7l)
Hardware\t: BCM2835
Revision\t: c03114
Serial\t\t: 10000000ABCDEF01
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""


def make_net(root: Path, interfaces: dict[str, tuple[str, bool]]) -> Path:
    for name, (mac, physical) in interfaces.items():
        (root / name).mkdir(parents=True)
        (root / name / "address").write_text(mac + "\n")
        if physical:
            (root / name / "device").mkdir()
    return root


def test_a_pi_is_known_by_its_serial(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(PI_CPUINFO)
    found = identity.hardware_id(
        cpuinfo=cpuinfo, device_tree=tmp_path / "none", net=tmp_path / "none"
    )
    assert found == "pi-10000000abcdef01"


def test_elsewhere_the_wired_mac_is_used_and_a_virtual_one_never(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Intel\n")
    net = make_net(
        tmp_path / "net",
        {
            "lo": ("00:00:00:00:00:00", False),
            "docker0": ("02:42:ac:11:00:01", False),  # virtual: no device
            "wlan0": ("b8:27:eb:00:00:02", True),
            "eth0": ("B8:27:EB:00:00:01", True),
        },
    )
    none = tmp_path / "none"
    assert identity.hardware_id(cpuinfo=cpuinfo, device_tree=none, net=net) == "mac-b827eb000001"
    # A container sees only its veth: the hardware gives no id there.
    veth = make_net(tmp_path / "container-net", {"eth0": ("02:42:ac:11:00:05", False)})
    assert identity.hardware_id(cpuinfo=cpuinfo, device_tree=none, net=veth) is None


def test_a_kept_id_reads_back_and_an_old_bare_one_gets_its_prefix(tmp_path):
    made = identity.new_id()
    assert made.startswith("id-") and len(made) == 35
    identity.write_id_file(tmp_path / "data", made)
    assert identity.read_id_file(tmp_path / "data") == made
    # Before storage owned the id, each service kept the bare hex of its own.
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "device-id").write_text("40458a05" * 4 + "\n")
    assert identity.read_id_file(tmp_path / "old") == "id-" + "40458a05" * 4
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "device-id").write_text("not an id at all\n")
    assert identity.read_id_file(tmp_path / "junk") is None


class Storage:
    """What a service asks: storage's GetDevice, up or away."""

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self.up = True
        self.asked = 0

    def __call__(self) -> str:
        self.asked += 1
        if not self.up:
            raise UnavailableError("storage:50051 unavailable")
        return self.device_id


def test_a_service_learns_the_id_from_storage_and_keeps_a_copy_for_its_outages(tmp_path):
    storage = Storage("pi-10000000abcdef01")
    data = tmp_path / "recorder-data"
    learned = identity.LearnedIdentity(storage, data)
    assert learned.get() == "pi-10000000abcdef01"
    assert identity.read_id_file(data) == "pi-10000000abcdef01"
    assert learned.get() == "pi-10000000abcdef01" and storage.asked == 1  # asked once

    # Restarted while storage is away: the copy answers, and storage is asked again later.
    storage.up = False
    now = [0.0]
    restarted = identity.LearnedIdentity(storage, data, retry_s=60, clock=lambda: now[0])
    assert restarted.get() == "pi-10000000abcdef01"
    assert restarted.get() == "pi-10000000abcdef01"
    assert storage.asked == 2  # not again within retry_s
    storage.up = True
    now[0] = 61.0
    assert restarted.get() == "pi-10000000abcdef01" and storage.asked == 3


def test_a_recreated_data_volume_learns_the_same_id_again(tmp_path):
    storage = Storage("id-" + "ab" * 16)
    first = identity.LearnedIdentity(storage, tmp_path / "v1").get()
    again = identity.LearnedIdentity(storage, tmp_path / "v2-empty").get()
    assert first == again == storage.device_id


def test_with_neither_storage_nor_a_copy_the_error_says_who_owns_the_id(tmp_path):
    storage = Storage("pi-1")
    storage.up = False
    with pytest.raises(UnavailableError, match="storage owns it"):
        identity.LearnedIdentity(storage, tmp_path / "empty").get()
