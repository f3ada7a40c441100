"""PCI passthrough: the devices nodes hand to guests (GPUs, display and 3D controllers, SR-IOV NICs),
their IOMMU groups and drivers (``host.pci``), and nova's ``[pci] device_spec`` and ``alias``.

Inventory::

    provision:
      pci:
        devices:
          - {alias: h200, vendor_id: "10de", product_id: "2335"}             # every H200 on the node
          - {address: "0000:3b:00.0", device_type: type-PF, physical_network: physnet1}

nova's ``[pci]`` options are multi-valued: one ``device_spec`` line per device entry, one ``alias`` line
per entry with an alias (a flavor asks for it as ``pci_passthrough:alias=h200:1``).
"""

from __future__ import annotations

import json

from provision.checks import CheckSet, failed, passed, warned
from provision.facts import Facts
from provision.hookspecs import hookimpl
from provision.stages.render import RenderedFile

checks = CheckSet()
NOVA_PCI_DROP_IN = "/etc/nova/nova.conf.d/55-provision-pci.conf"
VFIO = "vfio-pci"
# PCI class codes (the first byte of sysfs "class"): 0x03 display (VGA 0x0300, 3D 0x0302), 0x12 accelerators
PASSTHROUGH_CLASSES = {"03": "display/3D controller", "12": "processing accelerator"}


@hookimpl
def provision_settings_schema():
    from pydantic import Field

    from provision_plugins.pci_schema import PciSettings

    return {"pci": (PciSettings, Field(default_factory=PciSettings))}


@hookimpl
def provision_probe():
    return {"host.pci": {"op": "pci_devices", "path": "/sys/bus/pci/devices"}}


def _hex(value: str | None) -> str:
    return (value or "").lower().removeprefix("0x")


def describe(device: dict) -> str:
    """``10de:2335 display/3D controller, driver nvidia, IOMMU group 12``."""
    kind = PASSTHROUGH_CLASSES.get(_hex(device.get("class"))[:2])
    if kind is None and device.get("sriov_totalvfs", "0") not in ("", "0"):
        kind = f"SR-IOV, {device['sriov_numvfs'] or 0} of {device['sriov_totalvfs']} VFs enabled"
    if kind is None and device.get("physfn"):
        kind = f"virtual function of {device['physfn']}"
    group = f"IOMMU group {device['iommu_group']}" if "iommu_group" in device else "no IOMMU group"
    return (f"{_hex(device.get('vendor'))}:{_hex(device.get('device'))} {kind or 'class ' + _hex(device.get('class'))}, "
            f"driver {device.get('driver', 'none')}, {group}")


def candidates(devices: list[dict]) -> list[dict]:
    """The devices nodes pass to guests: GPUs, display and 3D controllers, accelerators, SR-IOV NICs."""
    return [d for d in devices if _hex(d.get("class"))[:2] in PASSTHROUGH_CLASSES
            or d.get("sriov_totalvfs", "0") not in ("", "0")]


def matches(entry: dict, device: dict) -> bool:
    """Whether a ``pci.devices`` entry names ``device`` (by address, or by ids and device type)."""
    if entry.get("address") and entry["address"].lower() != device["address"].lower():
        return False
    if entry.get("vendor_id") and entry["vendor_id"] != _hex(device.get("vendor")):
        return False
    if entry.get("product_id") and entry["product_id"] != _hex(device.get("device")):
        return False
    if entry["device_type"] == "type-VF":
        return bool(device.get("physfn"))
    if entry["device_type"] == "type-PF":
        return device.get("sriov_totalvfs", "0") not in ("", "0")
    return not device.get("physfn")


def group_peers(device: dict, devices: list[dict]) -> list[str]:
    """The other devices in ``device``'s IOMMU group that are not its own functions (same bus and slot)."""
    slot = device["address"].rsplit(".", 1)[0]
    return [d["address"] for d in devices if d is not device and d.get("iommu_group") == device.get("iommu_group")
            and d["address"].rsplit(".", 1)[0] != slot]


def _label(entry: dict) -> str:
    return entry.get("alias") or entry.get("address") or f"{entry.get('vendor_id')}:{entry.get('product_id')}"


@checks.register("host.pci", "PCI devices for passthrough (GPUs, accelerators, SR-IOV NICs): IOMMU group of their own, "
                             "bound to vfio-pci when the inventory passes them through")
def host_pci(facts: Facts, settings):
    ans = facts.answer("host.pci")
    if "error" in ans:
        return warned(f"cannot list PCI devices: {ans['error']}", {"/sys/bus/pci/devices": ans["error"]},
                      "check that sysfs is mounted on the node")
    devices = ans.get("devices", [])
    wanted = ((settings.get("pci") or {}).get("devices")) or []
    shown = {d["address"]: describe(d) for d in candidates(devices)}
    problems: list[str] = []
    remedies: list[str] = []
    ready: list[str] = []
    for entry in wanted:
        found = [d for d in devices if matches(entry, d)]
        if not found:
            problems.append(f"{_label(entry)}: no such {entry['device_type']} device on the node")
            continue
        for device in found:
            shown[device["address"]] = describe(device)
            ready.append(device["address"])
            if "iommu_group" not in device:
                problems.append(f"{_label(entry)}: {device['address']} has no IOMMU group, so it cannot be given to a guest")
                remedies.append("enable VT-d/AMD-Vi in the firmware and boot with intel_iommu=on (Intel) or amd_iommu=on; "
                                "on a VM, its hypervisor must offer a virtual IOMMU")
                continue
            if peers := group_peers(device, devices):
                problems.append(f"{_label(entry)}: {device['address']} shares IOMMU group {device['iommu_group']} with "
                                f"{', '.join(peers)}, which would go to the guest with it")
                remedies.append("move the card to a slot with its own group, or enable ACS on the bridge above it")
            if entry["device_type"] == "type-PCI" and device.get("driver") != VFIO:
                problems.append(f"{_label(entry)}: {device['address']} is bound to {device.get('driver', 'no driver')}, "
                                f"not {VFIO}")
                remedies.append(f"bind it to {VFIO} at boot: vfio-pci.ids={entry.get('vendor_id') or _hex(device.get('vendor'))}:"
                                f"{entry.get('product_id') or _hex(device.get('device'))} on the kernel command line, "
                                "with the host driver blacklisted")
    evidence = dict(sorted(shown.items())) or {"/sys/bus/pci/devices": f"{len(devices)} devices, none for passthrough"}
    if problems:
        return failed("; ".join(problems), evidence, "; ".join(dict.fromkeys(remedies)))
    if wanted:
        return passed(f"ready for passthrough: {', '.join(sorted(set(ready)))}", evidence)
    lonely = [a for a, d in ((d["address"], d) for d in candidates(devices)) if "iommu_group" not in d]
    if lonely:
        return warned(f"{', '.join(lonely)} could be passed to guests, but the node has no IOMMU groups", evidence,
                      "enable VT-d/AMD-Vi and intel_iommu=on (or amd_iommu=on) if guests are to get these devices")
    if shown:
        return passed(f"{len(shown)} device{'s' if len(shown) > 1 else ''} for passthrough, each in an IOMMU group", evidence)
    return passed("no GPUs, accelerators or SR-IOV devices on this node", evidence)


provision_check_catalog, provision_checks = checks.hooks()


@hookimpl
def provision_validate_settings(settings):
    """An alias names one kind of device: two entries with one alias name would be two aliases to nova."""
    seen: dict[str, int] = {}
    problems = []
    for i, entry in enumerate((settings.get("pci") or {}).get("devices") or []):
        if entry.get("alias") in seen:
            problems.append((("pci", "devices", i, "alias"), f"{entry['alias']!r} is already the alias of devices[{seen[entry['alias']]}]"))
        elif entry.get("alias"):
            seen[entry["alias"]] = i
    return problems


def nova_pci_options(devices: list[dict]) -> tuple[list[str], list[str]]:
    """nova's ``[pci] device_spec`` and ``alias`` values (JSON objects), one per entry."""
    specs, aliases = [], []
    for entry in devices:
        spec = {k: entry[k] for k in ("vendor_id", "product_id", "address", "physical_network") if entry.get(k)}
        specs.append(json.dumps(spec))
        if entry.get("alias"):
            alias = {"name": entry["alias"], "vendor_id": entry["vendor_id"], "product_id": entry["product_id"],
                     "device_type": entry["device_type"]}
            if entry.get("numa_policy"):
                alias["numa_policy"] = entry["numa_policy"]
            aliases.append(json.dumps(alias))
    return specs, aliases


@hookimpl
def provision_render(ctx):
    devices = (ctx.settings.get("pci") or {}).get("devices") or []
    if not devices:
        return []
    specs, aliases = nova_pci_options(devices)
    return [RenderedFile(NOVA_PCI_DROP_IN, ctx.render("nova/pci.conf.j2", device_specs=specs, aliases=aliases), "0640")]
