from pathlib import Path

from acoustack.identity import device_id

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
    assert device_id(
        tmp_path, cpuinfo=cpuinfo, device_tree=tmp_path / "none", net=tmp_path / "none"
    ) == ("pi-10000000abcdef01")


def test_elsewhere_the_wired_mac_is_used(tmp_path):
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
    assert (
        device_id(tmp_path, cpuinfo=cpuinfo, device_tree=tmp_path / "none", net=net)
        == "mac-b827eb000001"
    )


def test_without_either_an_id_is_made_once_and_kept(tmp_path):
    data = tmp_path / "data"
    kwargs = dict(cpuinfo=tmp_path / "none", device_tree=tmp_path / "none", net=tmp_path / "none")
    first = device_id(data, **kwargs)
    assert first.startswith("id-") and len(first) == 35
    assert device_id(data, **kwargs) == first  # after a restart
    assert (data / "device-id").read_text().strip() == first[3:]
