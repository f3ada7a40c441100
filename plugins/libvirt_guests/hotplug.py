"""Hot-plug: disks, NICs, vCPUs and memory, live where the guest runs and in its definition."""

from __future__ import annotations

import time
import uuid
from xml.etree import ElementTree as ET

from provision.errors import InputError
from provision.guests import Change, GuestError
from provision_plugins.libvirt_guests.connection import Connection, message


class HotPlug(Connection):  # a part of LibvirtBackend: it uses the connection's members
    def _apply(self, dom, action: str, fn, *args) -> tuple[str, str]:
        """Apply live and to the config when the guest runs, else to the config; (how, why not live)."""
        live_flags = self.lv.VIR_DOMAIN_AFFECT_LIVE | self.lv.VIR_DOMAIN_AFFECT_CONFIG
        if self._running(dom):
            try:
                fn(*args, live_flags)
                return "live", ""
            except self.lv.libvirtError as exc:
                reason = message(exc)
                self._call(dom, action, fn, *args, self.lv.VIR_DOMAIN_AFFECT_CONFIG)
                return "next boot", f"live change refused: {reason}"
        self._call(dom, action, fn, *args, self.lv.VIR_DOMAIN_AFFECT_CONFIG)
        return "next boot", "the guest is not running"

    def attach_disk(self, name: str, pool: str, size: int) -> Change:
        dom = self._domain(name)
        pool_obj = self._pool(pool)
        used = {d["target"] for d in self.info(name).disks}
        target = next(f"vd{c}" for c in "bcdefghijklmnopqrstuvwxyz" if f"vd{c}" not in used)
        made: list = []
        vol = self._new_volume(pool_obj, f"{name}-{target}-{uuid.uuid4().hex[:6]}.qcow2", size, made)
        xml = (f"<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/>"
               f"<source pool='{pool}' volume='{vol.name()}'/><target dev='{target}' bus='virtio'/></disk>")
        try:
            how, why = self._apply(dom, "attach-disk", dom.attachDeviceFlags, xml)
        except GuestError:
            self._rollback(made)
            raise
        return Change(name, f"attached {target} ({vol.name()})", how, why)

    def _device_xml(self, dom, xpath: str, key: str, value: str, what: str) -> str:
        for dev in ET.fromstring(dom.XMLDesc(0)).findall(xpath):
            node = dev.find(key.split("@")[0])
            if node is not None and node.get(key.split("@")[1]) == value:
                return ET.tostring(dev, encoding="unicode")
        raise GuestError(f"{dom.name()} has no {what} {value}")

    def _still_there(self, dom, xpath: str, key: str, value: str) -> bool:
        node, attr = key.split("@")
        return any(d.find(node) is not None and d.find(node).get(attr) == value
                   for d in ET.fromstring(dom.XMLDesc(0)).findall(xpath))

    def _detach(self, name: str, xpath: str, key: str, value: str, what: str) -> tuple[str, str]:
        """Detach the device whose ``key`` is ``value``; a live detach the guest has not acknowledged says so."""
        dom = self._domain(name)
        xml = self._device_xml(dom, xpath, key, value, what)
        how, why = self._apply(dom, f"detach {what}", dom.detachDeviceFlags, xml)
        if how == "live" and self._still_there(dom, xpath, key, value):
            how, why = "next boot", "the guest has not released the device yet; it is gone from the config"
        return how, why

    def detach_disk(self, name: str, target: str) -> Change:
        return Change(name, f"detached {target}", *self._detach(name, "devices/disk", "target@dev", target, "disk"))

    def attach_nic(self, name: str, network: str) -> Change:
        dom = self._domain(name)
        try:
            self.conn.networkLookupByName(network)
        except self.lv.libvirtError:
            raise InputError(f"network {network!r} does not exist at {self.uri}") from None
        before = {n["mac"] for n in self.info(name).nics}
        xml = f"<interface type='network'><source network='{network}'/><model type='virtio'/></interface>"
        how, why = self._apply(dom, "attach-nic", dom.attachDeviceFlags, xml)
        mac = next(iter({n["mac"] for n in self.info(name).nics} - before), "")
        if not mac:  # attached to the config only: its MAC is in the inactive XML
            inactive = ET.fromstring(dom.XMLDesc(self.lv.VIR_DOMAIN_XML_INACTIVE))
            macs = {i.find("mac").get("address") for i in inactive.findall("devices/interface")}
            mac = next(iter(macs - before), "")
        return Change(name, f"attached a NIC on {network} ({mac})", how, why)

    def detach_nic(self, name: str, mac: str) -> Change:
        return Change(name, f"detached NIC {mac}", *self._detach(name, "devices/interface", "mac@address", mac, "NIC"))

    def set_vcpus(self, name: str, count: int) -> Change:
        dom = self._domain(name)
        maximum = dom.vcpusFlags(self.lv.VIR_DOMAIN_AFFECT_CONFIG | self.lv.VIR_DOMAIN_VCPU_MAXIMUM)
        if count > maximum:
            self._call(dom, "set-vcpus", dom.setVcpusFlags, count,
                       self.lv.VIR_DOMAIN_AFFECT_CONFIG | self.lv.VIR_DOMAIN_VCPU_MAXIMUM)
            self._call(dom, "set-vcpus", dom.setVcpusFlags, count, self.lv.VIR_DOMAIN_AFFECT_CONFIG)
            return Change(name, f"{count} vCPUs", "next boot", f"above the maximum of {maximum}, which was raised")
        how, why = self._apply(dom, "set-vcpus", dom.setVcpusFlags, count)
        return Change(name, f"{count} vCPUs", how, why)

    def set_memory(self, name: str, mib: int) -> Change:
        dom = self._domain(name)
        maximum = dom.maxMemory() // 1024
        if mib > maximum:
            self._call(dom, "set-memory", dom.setMemoryFlags, mib * 1024,
                       self.lv.VIR_DOMAIN_AFFECT_CONFIG | self.lv.VIR_DOMAIN_MEM_MAXIMUM)
            self._call(dom, "set-memory", dom.setMemoryFlags, mib * 1024, self.lv.VIR_DOMAIN_AFFECT_CONFIG)
            return Change(name, f"{mib} MiB", "next boot", f"above the maximum of {maximum} MiB, which was raised")
        how, why = self._apply(dom, "set-memory", dom.setMemoryFlags, mib * 1024)
        if how == "live":  # the balloon moves only if the guest's driver answers
            deadline = time.monotonic() + 5
            while dom.info()[2] != mib * 1024 and time.monotonic() < deadline:
                time.sleep(0.1)
            if dom.info()[2] != mib * 1024:
                how, why = "live, requested", (f"the guest holds {dom.info()[2] // 1024} MiB: it has not ballooned "
                                               "(no virtio_balloon driver?)")
        return Change(name, f"{mib} MiB", how, why)
