"""host.pci on recorded sysfs trees, the real probe on this machine, and nova's [pci] options as
nova's own reader (oslo.config) reads them."""

import json
import os
from pathlib import Path

import pytest

from provision.facts import Facts
from provision.node import probe_devices as probe_script  # the stdlib code the node runs, run here
from provision_plugins.pci import host_pci

H200 = Path(__file__).resolve().parents[1] / "fixtures" / "gpu-node-h200"  # recorded on a real H200 node
NOTHING = {"pci": {"devices": []}}


def entry(**kw):
    return {"alias": None, "vendor_id": None, "product_id": None, "address": None, "device_type": "type-PCI",
            "numa_policy": None, "physical_network": None, **kw}


def wants(*entries):
    return {"pci": {"devices": list(entries)}}


def facts_of(root: Path) -> Facts:
    return Facts({"_probe": {"machine": "x86_64"}, "host.pci": probe_script.op_pci_devices({"path": str(root)})})


def device(root: Path, address: str, vendor: str, product: str, cls: str, *, driver: str | None = None,
           group: str | None = None, **attrs) -> Path:
    """A device folder as the kernel lays it out (Documentation/ABI/testing/sysfs-bus-pci): attribute
    files, and ``driver`` / ``iommu_group`` / ``physfn`` as links."""
    folder = root / "sys" / "bus" / "pci" / "devices" / address
    folder.mkdir(parents=True)
    for name, value in {"vendor": vendor, "device": product, "class": cls, "numa_node": "0", **attrs}.items():
        (folder / name).write_text(value + "\n")
    if driver:
        (root / "drivers" / driver).mkdir(parents=True, exist_ok=True)
        (folder / "driver").symlink_to(root / "drivers" / driver)
    if group:
        (root / "sys" / "kernel" / "iommu_groups" / group).mkdir(parents=True, exist_ok=True)
        (folder / "iommu_group").symlink_to(root / "sys" / "kernel" / "iommu_groups" / group)
    return folder


def devices_of(root: Path) -> Path:
    return root / "sys" / "bus" / "pci" / "devices"


def test_the_recorded_h200_node_has_a_gpu_that_cannot_be_passed_on():
    facts = facts_of(H200 / "sys" / "bus" / "pci" / "devices")
    result = host_pci(facts, NOTHING)
    assert result.status == "warn"
    assert result.message == "0000:00:06.0 could be passed to guests, but the node has no IOMMU groups"
    assert result.evidence == {"0000:00:06.0": "10de:2335 display/3D controller, driver nvidia, no IOMMU group"}
    asked = host_pci(facts, wants(entry(alias="h200", vendor_id="10de", product_id="2335")))
    assert asked.status == "fail"
    assert asked.message.startswith("h200: 0000:00:06.0 has no IOMMU group, so it cannot be given to a guest")
    assert "intel_iommu=on" in asked.remedy


def test_a_gpu_in_its_own_group_bound_to_vfio_is_ready(tmp_path):
    device(tmp_path, "0000:00:00.0", "0x8086", "0x09a2", "0x060000", group="0")
    device(tmp_path, "0000:3b:00.0", "0x10de", "0x2335", "0x030200", driver="vfio-pci", group="41")
    device(tmp_path, "0000:3b:00.1", "0x10de", "0x22e8", "0x040300", driver="vfio-pci", group="41")  # its audio function
    facts = facts_of(devices_of(tmp_path))
    result = host_pci(facts, wants(entry(alias="h200", vendor_id="10de", product_id="2335")))
    assert (result.status, result.message) == ("pass", "ready for passthrough: 0000:3b:00.0")
    assert result.evidence["0000:3b:00.0"] == "10de:2335 display/3D controller, driver vfio-pci, IOMMU group 41"
    assert host_pci(facts, NOTHING).message == "1 device for passthrough, each in an IOMMU group"


def test_a_gpu_on_its_host_driver_and_in_a_shared_group_fails_with_both_reasons(tmp_path):
    device(tmp_path, "0000:00:01.0", "0x8086", "0x1901", "0x060400", driver="pcieport", group="2")  # the bridge above
    device(tmp_path, "0000:01:00.0", "0x10de", "0x2204", "0x030000", driver="nvidia", group="2")
    result = host_pci(facts_of(devices_of(tmp_path)), wants(entry(vendor_id="10de", product_id="2204")))
    assert result.status == "fail"
    assert result.message == ("10de:2204: 0000:01:00.0 shares IOMMU group 2 with 0000:00:01.0, which would go to the "
                              "guest with it; 10de:2204: 0000:01:00.0 is bound to nvidia, not vfio-pci")
    assert "vfio-pci.ids=10de:2204" in result.remedy and "ACS" in result.remedy


def test_a_nic_with_virtual_functions(tmp_path):
    device(tmp_path, "0000:5e:00.0", "0x15b3", "0x101d", "0x020000", driver="mlx5_core", group="60",
           sriov_totalvfs="16", sriov_numvfs="2")
    for n in (1, 2):
        vf = device(tmp_path, f"0000:5e:00.{n}", "0x15b3", "0x101e", "0x020000", driver="mlx5_core", group=str(60 + n))
        (vf / "physfn").symlink_to(devices_of(tmp_path) / "0000:5e:00.0")
    facts = facts_of(devices_of(tmp_path))
    assert host_pci(facts, NOTHING).evidence["0000:5e:00.0"] == ("15b3:101d SR-IOV, 2 of 16 VFs enabled, driver mlx5_core, "
                                                                 "IOMMU group 60")
    vfs = host_pci(facts, wants(entry(vendor_id="15b3", product_id="101e", device_type="type-VF", physical_network="physnet1")))
    assert (vfs.status, vfs.message) == ("pass", "ready for passthrough: 0000:5e:00.1, 0000:5e:00.2")  # VFs keep the host driver
    pf = host_pci(facts, wants(entry(address="0000:5e:00.0", device_type="type-PF")))
    assert pf.status == "pass"
    missing = host_pci(facts, wants(entry(vendor_id="15b3", product_id="101e")))  # type-PCI: the VFs are not such devices
    assert (missing.status, missing.message) == ("fail", "15b3:101e: no such type-PCI device on the node")


def test_the_probe_on_this_machine_reads_every_pci_device():
    if not os.path.isdir("/sys/bus/pci/devices"):
        pytest.skip("no PCI bus here")
    answer = probe_script.op_pci_devices({})
    assert [d["address"] for d in answer["devices"]] == sorted(os.listdir("/sys/bus/pci/devices"))
    for d in answer["devices"]:
        assert d["vendor"] == open(f"/sys/bus/pci/devices/{d['address']}/vendor").read().strip()
        link = f"/sys/bus/pci/devices/{d['address']}/driver"
        assert d.get("driver") == (os.path.basename(os.readlink(link)) if os.path.islink(link) else None)
    assert host_pci(Facts({"host.pci": answer}), NOTHING).status in ("pass", "warn")


INVENTORY_PCI = {"devices": [
    {"alias": "h200", "vendor_id": "10DE", "product_id": "2335", "numa_policy": "preferred"},
    {"address": "0000:5e:00.0", "device_type": "type-PF", "physical_network": "physnet1"},
]}


def inventory(tmp_path: Path, pci: dict) -> Path:
    import yaml

    inv = tmp_path / "site.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"n1": {"ansible_connection": "local"}}, "vars": {
        "provision": {"virt_type": "qemu", "pci": pci}}}}))
    return inv


def test_render_is_read_by_nova_s_own_config_reader(tmp_path, cli):
    from oslo_config import cfg

    result = cli("render", "-i", str(inventory(tmp_path, INVENTORY_PCI)), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    conf_file = tmp_path / "out" / "n1" / "etc" / "nova" / "nova.conf.d" / "55-provision-pci.conf"
    conf = cfg.ConfigOpts()
    conf.register_opts([cfg.MultiStrOpt("device_spec"), cfg.MultiStrOpt("alias")], group="pci")
    conf(args=[], default_config_files=[str(conf_file)])
    assert [json.loads(v) for v in conf.pci.device_spec] == [
        {"vendor_id": "10de", "product_id": "2335"},
        {"address": "0000:5e:00.0", "physical_network": "physnet1"}]
    assert [json.loads(v) for v in conf.pci.alias] == [
        {"name": "h200", "vendor_id": "10de", "product_id": "2335", "device_type": "type-PCI", "numa_policy": "preferred"}]


@pytest.mark.parametrize(("devices", "field", "message"), [
    ([{"vendor_id": "10de"}], "pci.devices[0]", "name the device by vendor_id and product_id, or by address"),
    ([{"address": "0000:01:00.0", "alias": "gpu"}], "pci.devices[0]", "an alias needs vendor_id and product_id"),
    ([{"vendor_id": "10de\nalias = x", "product_id": "2335"}], "pci.devices[0].vendor_id", "should match pattern"),
    ([{"address": "0000:01:00.0\"}", "device_type": "type-PF"}], "pci.devices[0].address", "should match pattern"),
    ([{"vendor_id": "10de", "product_id": "2335", "alias": "gpu"}, {"vendor_id": "10de", "product_id": "2336", "alias": "gpu"}],
     "pci.devices[1].alias", "'gpu' is already the alias of devices[0]"),
    ([{"vendor_id": "10de", "product_id": "2335", "physical_network": "phys net"}], "pci.devices[0].physical_network",
     "must be letters, digits"),
])
def test_bad_pci_entries_are_input_errors(devices, field, message, tmp_path, cli):
    inv = inventory(tmp_path, {"devices": devices})
    result = cli("render", "-i", str(inv), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and not (tmp_path / "out").exists()
    line = next((ln for ln in result.output.splitlines() if f"{inv}: host n1: provision.{field}: " in ln), None)
    assert line is not None and message in line, result.output
