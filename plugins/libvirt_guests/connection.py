"""The connection to one libvirt URI, and what every part of the backend looks up through it."""

from __future__ import annotations

from urllib.parse import urlparse
from xml.etree import ElementTree as ET

from provision.errors import InputError
from provision.guests import GuestError, GuestInfo

STATES = {0: "nostate", 1: "running", 2: "blocked", 3: "paused", 4: "shutdown", 5: "shut off", 6: "crashed",
          7: "pmsuspended"}


def _libvirt():
    try:
        import libvirt
    except ImportError:
        raise InputError("libvirt-python is not installed: pip install 'provision[guests]' (needs libvirt-dev, pkg-config)") from None
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors are raised, not printed
    return libvirt


def message(exc) -> str:
    return exc.get_error_message() if hasattr(exc, "get_error_message") else str(exc)


class Connection:
    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.lv = _libvirt()
        try:
            self.conn = self.lv.open(uri)
        except self.lv.libvirtError as exc:
            raise GuestError(f"cannot connect to {uri}: {message(exc)}") from None
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

    def _call(self, dom, action: str, fn, *args):
        try:
            return fn(*args)
        except self.lv.libvirtError as exc:
            raise GuestError(f"{action} {dom.name()} failed: {message(exc)}") from None

    # -- volumes made for a guest, and their removal ---------------------------------------------
    def _new_volume(self, pool, name: str, size: int, made: list):
        xml = f"<volume><name>{name}</name><capacity unit='bytes'>{size}</capacity><target><format type='qcow2'/></target></volume>"
        try:
            vol = pool.createXML(xml, 0)
        except self.lv.libvirtError as exc:
            raise GuestError(f"cannot create volume {name} in pool {pool.name()}: {message(exc)}") from None
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
                undone.append(f"could not remove {obj.name()}: {message(exc)}")
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
