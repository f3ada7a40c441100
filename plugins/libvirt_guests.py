"""The libvirt guest backend: define, start and manage guests over the libvirt API (libvirt-python)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from dataclasses import replace
from urllib.parse import urlparse
from xml.etree import ElementTree as ET

from provision.errors import InputError
from provision.guests import Change, DiskSpec, GuestError, GuestInfo, GuestSpec, render_domain_xml
from provision.hookspecs import hookimpl

LIBVIRT_SCHEMES = ("qemu", "qemu+ssh", "qemu+tcp", "qemu+tls", "qemu+unix", "qemu+libssh", "qemu+libssh2")
STATES = {0: "nostate", 1: "running", 2: "blocked", 3: "paused", 4: "shutdown", 5: "shut off", 6: "crashed",
          7: "pmsuspended"}


@hookimpl
def provision_guest_backend(uri):
    if urlparse(uri).scheme not in LIBVIRT_SCHEMES:
        return None
    return LibvirtBackend(uri)


def _libvirt():
    try:
        import libvirt
    except ImportError:
        raise InputError("libvirt-python is not installed: pip install 'provision[guests]' (needs libvirt-dev, pkg-config)") from None
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors are raised, not printed
    return libvirt


def _message(exc) -> str:
    return exc.get_error_message() if hasattr(exc, "get_error_message") else str(exc)


class LibvirtBackend:
    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.lv = _libvirt()
        try:
            self.conn = self.lv.open(uri)
        except self.lv.libvirtError as exc:
            raise GuestError(f"cannot connect to {uri}: {_message(exc)}") from None
        self.is_local = urlparse(uri).netloc == ""

    def close(self) -> None:
        try:
            self.conn.close()
        except self.lv.libvirtError:
            pass

    # -- lookups ---------------------------------------------------------------------------------
    def _domain(self, name: str):
        try:
            return self.conn.lookupByName(name)
        except self.lv.libvirtError:
            raise GuestError(f"no guest named {name!r} at {self.uri}") from None

    def _pool(self, name: str):
        try:
            pool = self.conn.storagePoolLookupByName(name)
        except self.lv.libvirtError:
            pools = ", ".join(sorted(self.conn.listStoragePools() + self.conn.listDefinedStoragePools())) or "none"
            raise InputError(f"storage pool {name!r} does not exist at {self.uri} (pools: {pools})") from None
        if not pool.isActive():
            raise InputError(f"storage pool {name!r} at {self.uri} is not active: virsh pool-start {name}")
        return pool

    def _state(self, dom) -> str:
        return STATES.get(dom.state()[0], "unknown")

    def _running(self, dom) -> bool:
        return dom.state()[0] in (1, 2, 3)

    def host_arch(self) -> str:
        """The node's architecture, from libvirt's capabilities."""
        return ET.fromstring(self.conn.getCapabilities()).findtext("host/cpu/arch") or "x86_64"

    # -- create ----------------------------------------------------------------------------------
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
            raise GuestError(f"creating {spec.name} failed: {_message(exc)}; rolled back: {undone or 'nothing was made'}") from None
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
        except (self.lv.libvirtError, AttributeError):
            pass
        if not self.is_local:
            raise InputError(f"--image {path}: not a volume in any storage pool at {self.uri}")
        proc = subprocess.run(["qemu-img", "info", "--output=json", path], capture_output=True, text=True)
        if proc.returncode:
            raise InputError(f"--image {path}: qemu-img cannot read it: {proc.stderr.strip()}")
        info = json.loads(proc.stdout)
        return info["format"], info["virtual-size"]

    def _new_volume(self, pool, name: str, size: int, made: list):
        xml = f"<volume><name>{name}</name><capacity unit='bytes'>{size}</capacity><target><format type='qcow2'/></target></volume>"
        try:
            vol = pool.createXML(xml, 0)
        except self.lv.libvirtError as exc:
            raise GuestError(f"cannot create volume {name} in pool {pool.name()}: {_message(exc)}") from None
        made.append(vol)
        return vol

    def _rollback(self, made: list) -> str:
        undone = []
        for obj in reversed(made):
            try:
                if isinstance(obj, self.lv.virDomain):
                    if obj.isActive():
                        obj.destroy()
                    obj.undefineFlags(self.lv.VIR_DOMAIN_UNDEFINE_NVRAM)
                    undone.append(f"guest {obj.name()} undefined")
                else:
                    name = obj.name()
                    obj.delete(0)
                    undone.append(f"volume {name} deleted")
            except self.lv.libvirtError as exc:
                undone.append(f"could not remove {obj.name()}: {_message(exc)}")
        return ", ".join(undone)

    # -- reading ---------------------------------------------------------------------------------
    def info(self, name: str) -> GuestInfo:
        return self._info(self._domain(name))

    def _info(self, dom) -> GuestInfo:
        root = ET.fromstring(dom.XMLDesc(0))
        state, _max_kib, mem_kib, vcpus, _ = dom.info()
        disks = [{"target": d.find("target").get("dev"),
                  "source": (d.find("source").get("volume") or d.find("source").get("file") or "") if d.find("source") is not None else "",
                  "pool": d.find("source").get("pool", "") if d.find("source") is not None else ""}
                 for d in root.findall("devices/disk")]
        nics = [{"mac": i.find("mac").get("address"), "network": (i.find("source").get("network") or i.find("source").get("bridge") or "")}
                for i in root.findall("devices/interface")]
        log = root.find("devices/serial/log")
        return GuestInfo(dom.name(), STATES.get(state, "unknown"), root.get("type"), vcpus, mem_kib // 1024,
                         bool(dom.isPersistent()), disks, nics, log.get("file") if log is not None else "")

    def list(self) -> list[GuestInfo]:
        return sorted((self._info(d) for d in self.conn.listAllDomains(0)), key=lambda g: g.name)

    # -- life cycle ------------------------------------------------------------------------------
    def _call(self, dom, action: str, fn, *args):
        try:
            return fn(*args)
        except self.lv.libvirtError as exc:
            raise GuestError(f"{action} {dom.name()} failed: {_message(exc)}") from None

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
            raise GuestError(f"restore from {path} failed: {_message(exc)}") from None
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

    # -- hot-plug --------------------------------------------------------------------------------
    def _apply(self, dom, action: str, fn, *args) -> tuple[str, str]:
        """Apply live and to the config when the guest runs, else to the config; (how, why not live)."""
        live_flags = self.lv.VIR_DOMAIN_AFFECT_LIVE | self.lv.VIR_DOMAIN_AFFECT_CONFIG
        if self._running(dom):
            try:
                fn(*args, live_flags)
                return "live", ""
            except self.lv.libvirtError as exc:
                reason = _message(exc)
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
                how, why = "live, requested", f"the guest holds {dom.info()[2] // 1024} MiB: it has not ballooned (no virtio_balloon driver?)"
        return Change(name, f"{mib} MiB", how, why)

    # -- migration -------------------------------------------------------------------------------
    def migrate(self, name: str, to_uri: str, live: bool | None) -> Change:
        dom = self._domain(name)
        try:
            dest = self.lv.open(to_uri)
        except self.lv.libvirtError as exc:
            raise GuestError(f"cannot connect to {to_uri}: {_message(exc)}") from None
        try:
            try:
                dest.lookupByName(name)
                raise GuestError(f"{to_uri} already has a guest named {name}; nothing was moved")
            except self.lv.libvirtError:
                pass
            if self._running(dom):
                if live is False:
                    raise GuestError(f"{name} is running: shut it down for an offline migration, or allow --live")
                flags = (self.lv.VIR_MIGRATE_LIVE | self.lv.VIR_MIGRATE_PERSIST_DEST
                         | self.lv.VIR_MIGRATE_UNDEFINE_SOURCE)
                self._call(dom, "live migration", dom.migrate, dest, flags, None, None, 0)
                return Change(name, f"migrated to {to_uri}", "live")
            if live:
                raise GuestError(f"{name} is not running: a live migration needs a running guest")
            xml = dom.XMLDesc(self.lv.VIR_DOMAIN_XML_INACTIVE | self.lv.VIR_DOMAIN_XML_SECURE)
            try:
                dest.defineXML(xml)
            except self.lv.libvirtError as exc:
                raise GuestError(f"offline migration of {name}: {to_uri} refused the definition: {_message(exc)}") from None
            self._call(dom, "undefine", dom.undefineFlags, self.lv.VIR_DOMAIN_UNDEFINE_NVRAM)
            return Change(name, f"migrated to {to_uri}", "offline",
                          "the definition moved; its disks must be reachable there (shared storage) or copied")
        finally:
            dest.close()

    # -- the canary ------------------------------------------------------------------------------
    def boot_canary(self, canary, virt_type: str, marker: str, timeout: float) -> tuple[float, str]:
        """Upload the canary into a pool made for it, boot it transient, wait for the marker on
        its console; remove everything. (seconds to the marker, console text)."""
        tag = f"provision-smoke-{uuid.uuid4().hex[:8]}"
        made_pool = None
        dom = None
        try:
            made_pool = self.conn.storagePoolDefineXML(
                f"<pool type='dir'><name>{tag}</name><target><path>/var/lib/libvirt/images/{tag}</path></target></pool>", 0)
            made_pool.build(0)
            made_pool.create(0)
            paths = {}
            for key, local in (("kernel", canary.kernel), ("initrd", canary.initrd)):
                paths[key] = self._upload(made_pool, f"{key}-{local.name}", local)
            spec = GuestSpec(tag, virt_type, arch=self.host_arch(), memory_mib=256, kernel=paths["kernel"], initrd=paths["initrd"],
                             cmdline=canary.cmdline)
            xml = render_domain_xml(spec).replace(f"<log file='{spec.console_log}' append='off'/>", "")
            start = time.monotonic()
            dom = self.conn.createXML(xml, 0)
            text = self._read_console(dom, marker, timeout)
            seconds = time.monotonic() - start
            if marker not in text:
                raise GuestError(f"no {marker!r} on the console within {timeout:g} s; console: {text[-300:]!r}")
            return seconds, text
        except self.lv.libvirtError as exc:
            raise GuestError(f"canary on {self.uri}: {_message(exc)}") from None
        finally:
            if dom is not None:
                try:
                    dom.destroy()
                except self.lv.libvirtError:
                    pass
            if made_pool is not None:
                for vol in made_pool.listAllVolumes(0) if made_pool.isActive() else []:
                    vol.delete(0)
                if made_pool.isActive():
                    made_pool.destroy()
                made_pool.delete(0)
                made_pool.undefine()

    def _upload(self, pool, name: str, local) -> str:
        size = os.path.getsize(local)
        vol = pool.createXML(f"<volume><name>{name}</name><capacity unit='bytes'>{size}</capacity>"
                             f"<target><format type='raw'/></target></volume>", 0)
        stream = self.conn.newStream(0)
        vol.upload(stream, 0, size, 0)
        with open(local, "rb") as fh:
            stream.sendAll(lambda _st, n, f: f.read(n), fh)
        stream.finish()
        return vol.path()

    def _read_console(self, dom, marker: str, timeout: float) -> str:
        """Read the serial console until ``marker`` or ``timeout``: a blocking reader in a thread
        (the remote driver moves stream data only inside calls), stopped by aborting the stream."""
        import threading

        stream = self.conn.newStream(0)
        dom.openConsole(None, stream, self.lv.VIR_DOMAIN_CONSOLE_FORCE)
        chunks: list[str] = []
        seen = threading.Event()

        def reader() -> None:
            try:
                while not seen.is_set():
                    data = stream.recv(4096)
                    if not data or data in (-1, -2):
                        break
                    chunks.append(data.decode("utf-8", "replace"))
                    if marker in "".join(chunks):
                        seen.set()
            except self.lv.libvirtError:
                pass

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        seen.wait(timeout)
        try:
            stream.abort()
        except self.lv.libvirtError:
            pass
        thread.join(2)
        return "".join(chunks)


def _xml_text(value: str) -> str:
    from xml.sax.saxutils import quoteattr

    return quoteattr(value)[1:-1]
