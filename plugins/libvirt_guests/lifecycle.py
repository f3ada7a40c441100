"""A guest's life cycle: create (with its disks, rolled back on failure), start, stop, pause, save, restore, undefine."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import replace
from xml.etree import ElementTree as ET

from provision.errors import InputError
from provision.guests import Change, DiskSpec, GuestError, GuestInfo, GuestSpec, render_domain_xml
from provision_plugins.libvirt_guests.connection import Connection, message


class LifeCycle(Connection):  # a part of LibvirtBackend: it uses the connection's members
    def create(self, spec: GuestSpec) -> GuestInfo:
        try:
            existing = self.conn.lookupByName(spec.name)
        except self.lv.libvirtError:
            existing = None
        if existing is not None:
            raise GuestError(f"guest {spec.name!r} already exists at {self.uri} ({self._state(existing)}); it was left untouched")
        total_mib = self.conn.getInfo()[1]
        if spec.memory_mib > total_mib:
            raise InputError(f"--memory {spec.memory_mib} MiB is more than the node has ({total_mib} MiB)")
        if self.is_local:
            for flag, path in (("--kernel", spec.kernel), ("--initrd", spec.initrd), ("--image", spec.image)):
                if path and not os.path.isfile(path):
                    raise InputError(f"{flag} {path}: no such file")
        pools = {p: self._pool(p) for p in {spec.pool for _ in [0] if spec.image} | {p for p, _ in spec.new_disks}}
        made: list = []  # volumes and the domain, removed again if anything fails
        try:
            disks = []
            if spec.image:
                disks.append(self._overlay(pools[spec.pool], spec, made))
            for i, (pool_name, size) in enumerate(spec.new_disks):
                vol = self._new_volume(pools[pool_name], f"{spec.name}-disk{i + 1}.qcow2", size, made)
                disks.append(DiskSpec(pool_name, vol.name(), f"vd{chr(ord('a') + len(disks))}"))
            spec = replace(spec, disks=tuple(disks))
            xml = render_domain_xml(spec)
            dom = self.conn.defineXML(xml)
            made.append(dom)
            dom.create()
        except (self.lv.libvirtError, GuestError) as exc:
            undone = self._rollback(made)
            raise GuestError(f"creating {spec.name} failed: {message(exc)}; rolled back: {undone or 'nothing was made'}") from None
        return self.info(spec.name)

    def _overlay(self, pool, spec: GuestSpec, made: list) -> DiskSpec:
        fmt, size = self._image_facts(spec.image)
        name = f"{spec.name}-root.qcow2"
        xml = (f"<volume><name>{name}</name><capacity unit='bytes'>{size}</capacity>"
               f"<target><format type='qcow2'/></target>"
               f"<backingStore><path>{_xml_text(spec.image)}</path><format type='{fmt}'/></backingStore></volume>")
        vol = pool.createXML(xml, 0)
        made.append(vol)
        return DiskSpec(pool.name(), name, "vda")

    def _image_facts(self, path: str) -> tuple[str, int]:
        """(format, virtual size) of a disk image: from libvirt when it is a volume, else qemu-img."""
        try:
            vol = self.conn.storageVolLookupByPath(path)
            fmt = ET.fromstring(vol.XMLDesc(0)).find("target/format").get("type")
            return fmt, vol.info()[1]
        except AttributeError:  # a volume whose XML names no format: qemu-img tells
            pass
        except self.lv.libvirtError as exc:
            if exc.get_error_code() != self.lv.VIR_ERR_NO_STORAGE_VOL:  # not "no such volume": say why
                raise GuestError(f"--image {path}: {message(exc)}") from None
        if not self.is_local:
            raise InputError(f"--image {path}: not a volume in any storage pool at {self.uri}")
        proc = subprocess.run(["qemu-img", "info", "--output=json", path], capture_output=True, text=True)
        if proc.returncode:
            raise InputError(f"--image {path}: qemu-img cannot read it: {proc.stderr.strip()}")
        info = json.loads(proc.stdout)
        return info["format"], info["virtual-size"]


    def start(self, name: str) -> Change:
        dom = self._domain(name)
        if self._running(dom):
            raise GuestError(f"{name} is already {self._state(dom)}")
        self._call(dom, "start", dom.create)
        return Change(name, "started", "running")

    def shutdown(self, name: str, timeout: float) -> Change:
        dom = self._domain(name)
        if not self._running(dom):
            raise GuestError(f"{name} is not running ({self._state(dom)})")
        start = time.monotonic()
        self._call(dom, "shutdown", dom.shutdownFlags, self.lv.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
        while time.monotonic() - start < timeout:
            if dom.state()[0] == 5:
                return Change(name, "shut down", "graceful", f"the guest powered off after {time.monotonic() - start:.1f} s")
            time.sleep(0.1)
        self._call(dom, "destroy", dom.destroy)
        return Change(name, "shut down", "forced", f"no power-off within {timeout:g} s, so it was destroyed")

    def destroy(self, name: str) -> Change:
        dom = self._domain(name)
        if not self._running(dom):
            raise GuestError(f"{name} is not running ({self._state(dom)})")
        self._call(dom, "destroy", dom.destroy)
        return Change(name, "destroyed", "forced off")

    def pause(self, name: str) -> Change:
        dom = self._domain(name)
        self._call(dom, "pause", dom.suspend)
        return Change(name, "paused", "live")

    def resume(self, name: str) -> Change:
        dom = self._domain(name)
        self._call(dom, "resume", dom.resume)
        return Change(name, "resumed", "live")

    def save(self, name: str, path: str) -> Change:
        dom = self._domain(name)
        self._call(dom, "save", dom.save, path)
        return Change(name, "saved", "stopped", f"memory state in {path}")

    def restore(self, path: str) -> Change:
        if self.is_local and not os.path.isfile(path):
            raise InputError(f"{path}: no such saved guest file")
        try:
            self.conn.restore(path)
        except self.lv.libvirtError as exc:
            raise GuestError(f"restore from {path} failed: {message(exc)}") from None
        name = ET.fromstring(self.conn.saveImageGetXMLDesc(path, 0)).findtext("name")
        return Change(name, "restored", "running", f"from {path}")

    def undefine(self, name: str, remove_storage: bool) -> Change:
        dom = self._domain(name)
        if self._running(dom):
            raise GuestError(f"{name} is {self._state(dom)}: shut it down or destroy it first")
        volumes = self._volumes(dom) if remove_storage else []
        flags = (self.lv.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | self.lv.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                 | self.lv.VIR_DOMAIN_UNDEFINE_NVRAM)
        self._call(dom, "undefine", dom.undefineFlags, flags)
        removed = []
        for vol in volumes:
            removed.append(vol.name())
            vol.delete(0)
        return Change(name, "undefined", "storage removed" if remove_storage else "storage kept", ", ".join(removed))

    def _volumes(self, dom) -> list:
        vols = []
        for disk in ET.fromstring(dom.XMLDesc(0)).findall("devices/disk"):
            source = disk.find("source")
            if source is None:
                continue
            try:
                if source.get("pool"):
                    vols.append(self.conn.storagePoolLookupByName(source.get("pool")).storageVolLookupByName(source.get("volume")))
                elif source.get("file"):
                    vols.append(self.conn.storageVolLookupByPath(source.get("file")))
            except self.lv.libvirtError:
                continue  # not in a pool: not ours to delete
        return vols


def _xml_text(value: str) -> str:
    from xml.sax.saxutils import quoteattr

    return quoteattr(value)[1:-1]
