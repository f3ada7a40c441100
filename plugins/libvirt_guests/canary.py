"""The smoke test's canary: a tiny kernel and initramfs booted transient until a marker on its console."""

from __future__ import annotations

import os
import re
import time
import uuid

from provision.guests import GuestError, GuestSpec, render_domain_xml
from provision.guests.canary import DISK_MARKER
from provision_plugins.libvirt_guests.connection import Connection, message

SCRATCH_BYTES = 16 << 20  # a volume smoke makes in a pool for the canary's marker
MADE = ("dir", "fs", "netfs", "logical", "rbd")  # pool types where libvirt makes volumes
BORROWED = ("iscsi", "iscsi-direct")  # LUNs are the target's: the last sector is borrowed and put back
# What smoke makes (its guest, its pool of the canary's files, its volumes in the node's pools) is named
# provision-smoke-<lease>-<random>: the lease (the epoch second, hex) by which the run is over, however
# it ends. A run killed before it removed them leaves them; the next smoke removes those whose lease
# has passed and that have the shape smoke gives them, and nothing else (not another run's, not an
# object provision did not make that happens to be named alike).
PREFIX = "provision-smoke-"
IMAGES = "/var/lib/libvirt/images"  # where smoke's own pool of the canary's files lives, one folder per run
LEASE_SECONDS = 600  # beyond the boot's own timeout
LEASED = re.compile(r"provision-smoke-([0-9a-f]{8,12})-[0-9a-f]{8}")


def leased_name(timeout: float) -> str:
    """A name for what one smoke run makes: its lease, then 8 random hex digits."""
    return f"{PREFIX}{int(time.time() + timeout + LEASE_SECONDS):x}-{uuid.uuid4().hex[:8]}"


def lapsed(name: str, now: float) -> bool:
    """Whether ``name`` is one smoke made and its lease has passed."""
    found = LEASED.fullmatch(name)
    return bool(found) and int(found.group(1), 16) < now


class Canary(Connection):  # a part of LibvirtBackend: it uses the connection's members
    def boot_canary(self, canary, virt_type: str, marker: str, timeout: float, disks: str = "",
                    cmdline: str = "") -> tuple[float, str]:
        """Upload the canary into a pool made for it, boot it transient (with ``disks``, domain XML,
        and ``cmdline`` added to its own), wait for the marker on its console; remove everything.
        (seconds to the marker, console text)."""
        tag = leased_name(timeout)
        made_pool = None
        dom = None
        try:
            self.sweep()
            made_pool = self.conn.storagePoolDefineXML(
                f"<pool type='dir'><name>{tag}</name><target><path>{IMAGES}/{tag}</path></target></pool>", 0)
            made_pool.build(0)
            made_pool.create(0)
            paths = {}
            for key, local in (("kernel", canary.kernel), ("initrd", canary.initrd)):
                paths[key] = self._upload(made_pool, f"{key}-{local.name}", local)
            spec = GuestSpec(tag, virt_type, arch=self.host_arch(), memory_mib=256, kernel=paths["kernel"], initrd=paths["initrd"],
                             cmdline=f"{canary.cmdline} {cmdline}".strip())
            xml = render_domain_xml(spec).replace(f"<log file='{spec.console_log}' append='off'/>", "")
            xml = xml.replace("</devices>", f"{disks}</devices>", 1)
            start = time.monotonic()
            dom = self.conn.createXML(xml, 0)
            text = self._read_console(dom, marker, timeout)
            seconds = time.monotonic() - start
            if marker not in text:
                raise GuestError(f"no {marker!r} on the console within {timeout:g} s; console: {text[-300:]!r}")
            return seconds, text
        except self.lv.libvirtError as exc:
            raise GuestError(f"canary on {self.uri}: {message(exc)}") from None
        finally:
            if dom is not None:
                try:
                    dom.destroy()
                except self.lv.libvirtError as exc:
                    if exc.get_error_code() not in (self.lv.VIR_ERR_NO_DOMAIN, self.lv.VIR_ERR_OPERATION_INVALID):
                        raise GuestError(f"canary on {self.uri}: guest {tag} could not be stopped: {message(exc)}") from None
            if made_pool is not None:
                for vol in made_pool.listAllVolumes(0) if made_pool.isActive() else []:
                    vol.delete(0)
                if made_pool.isActive():
                    made_pool.destroy()
                made_pool.delete(0)
                made_pool.undefine()

    def storage_canary(self, canary, virt_type: str, pools, marker: str, timeout: float) -> dict[str, dict]:
        """Boot the canary once with one small disk from each of ``pools``; it writes a marker to each
        and reads it back past its page cache. ``{pool: {"ok": bool, "seconds": float, "why": str}}``.
        A volume is made for it in a pool that makes volumes, and deleted after; in an iSCSI pool the
        first LUN's last sector is borrowed and put back by the canary."""
        token = leased_name(timeout)[len(PREFIX):]
        results: dict[str, dict] = {}
        disks: list[str] = []
        borrowed: list[str] = []
        made: list = []
        targets: dict[str, str] = {}
        try:
            for pool_name in pools:
                target = f"vd{chr(ord('a') + len(targets))}"
                try:
                    xml, volume = self._smoke_disk(pool_name, token, target, borrowed)
                except (self.lv.libvirtError, GuestError) as exc:
                    results[pool_name] = {"ok": False, "seconds": None,
                                          "why": message(exc) if isinstance(exc, self.lv.libvirtError) else str(exc)}
                    continue
                if volume is not None:
                    made.append((pool_name, volume))
                disks.append(xml)
                targets[target] = pool_name
            if not targets:
                return results
            boot, console = self.boot_canary(canary, virt_type, marker, timeout, "".join(disks),
                                             f"provision.token={token} provision.borrow={','.join(borrowed) or '-'}")
            lines = {ln.split()[2]: ln.split() for ln in console.splitlines() if ln.startswith(DISK_MARKER)
                     and len(ln.split()) >= 6}
            for target, pool_name in targets.items():
                words = lines.get(target)
                if words is None:
                    results[pool_name] = {"ok": False, "seconds": None, "why": f"the canary saw no disk {target}"}
                else:
                    seconds = round(float(words[5]) - float(words[4]), 3)
                    said = " ".join(words[6:])  # the sector, the disk's size, and dd's own words
                    results[pool_name] = {"ok": words[3] == "ok", "seconds": seconds, "boot_seconds": round(boot, 3),
                                          "why": "" if words[3] == "ok" else
                                          f"the marker written to {target} did not read back ({said})"}
        except GuestError as exc:
            for pool_name in targets.values():
                results.setdefault(pool_name, {"ok": False, "seconds": None, "why": str(exc)})
        finally:
            for pool_name, volume in made:
                try:
                    volume.delete(0)
                except self.lv.libvirtError as exc:  # left behind: said in the pool's own check
                    if exc.get_error_code() != self.lv.VIR_ERR_NO_STORAGE_VOL:
                        result = results.setdefault(pool_name, {"ok": False, "seconds": None, "why": ""})
                        result.update(ok=False, why=(result["why"] + "; " if result["why"] else "") +
                                      f"the smoke volume {volume.name()} could not be deleted: {message(exc)}")
        return results

    def sweep(self) -> list[str]:
        """Remove what smoke runs that did not end left, once their lease passed (:func:`lapsed`), and only
        what has the shape smoke gives it: a transient guest, a ``dir`` pool in IMAGES/<its name> (with
        the canary's files). The names removed. One that cannot be removed is a GuestError naming it;
        one gone meanwhile (another run removed it) is not."""
        now, removed = time.time(), list[str]()
        for dom in self.conn.listAllDomains(0):
            if lapsed(dom.name(), now) and not dom.isPersistent():
                self._remove(dom.name(), dom.destroy, removed)  # transient: gone with it
        for pool in self.conn.listAllStoragePools(0):
            if lapsed(pool.name(), now) and self._is_canary_pool(pool):
                self._remove(pool.name(), lambda pool=pool: self._drop_pool(pool), removed)
        return removed

    def sweep_volumes(self, pool) -> list[str]:
        """In a pool smoke makes volumes in, remove the volumes a smoke run that did not end left there:
        lapsed, and of the size smoke makes them. The names removed."""
        now, removed = time.time(), list[str]()
        pool.refresh(0)
        for vol in pool.listAllVolumes(0):
            if lapsed(vol.name(), now) and vol.info()[1] == SCRATCH_BYTES:
                self._remove(f"{pool.name()}/{vol.name()}", lambda vol=vol: vol.delete(0), removed)
        return removed

    def _remove(self, name: str, remove, removed: list[str]) -> None:
        try:
            remove()
        except self.lv.libvirtError as exc:
            gone = (self.lv.VIR_ERR_NO_DOMAIN, self.lv.VIR_ERR_NO_STORAGE_POOL, self.lv.VIR_ERR_NO_STORAGE_VOL)
            if exc.get_error_code() in gone:
                return
            raise GuestError(f"cannot remove {name}, left by a smoke run that did not end: {message(exc)}") from None
        removed.append(name)

    @staticmethod
    def _is_canary_pool(pool) -> bool:
        import xml.etree.ElementTree as ET

        root = ET.fromstring(pool.XMLDesc(0))
        return root.get("type") == "dir" and root.findtext("target/path") == f"{IMAGES}/{pool.name()}"

    @staticmethod
    def _drop_pool(pool) -> None:
        """A pool of the canary's files, its files and its folder."""
        if not pool.isActive():
            pool.create(0)
        for vol in pool.listAllVolumes(0):
            vol.delete(0)
        pool.destroy()
        pool.delete(0)
        pool.undefine()

    def _smoke_disk(self, pool_name: str, token: str, target: str, borrowed: list):
        """(the disk's domain XML, the volume made for it or None when borrowed)."""
        import xml.etree.ElementTree as ET
        from xml.sax.saxutils import quoteattr

        pool = self.conn.storagePoolLookupByName(pool_name)
        if not pool.isActive():
            raise GuestError(f"pool {pool_name} is not running")
        root = ET.fromstring(pool.XMLDesc(0))
        kind = root.get("type", "")
        if kind in BORROWED:
            pool.refresh(0)
            # LUN 0 of a target is often its controller, of no size: the first LUN with a capacity
            names = sorted(n for n in pool.listVolumes() if pool.storageVolLookupByName(n).info()[1] > 0)
            if not names:
                raise GuestError(f"iSCSI pool {pool_name} has no LUN with a capacity to borrow")
            borrowed.append(target)
            source, volume, disk_type = f"<source pool={quoteattr(pool_name)} volume={quoteattr(names[0])}/>", None, "volume"
            if kind == "iscsi-direct":  # libvirt gives such a volume QEMU's LUN 0 (a target's controller): the network source
                source, disk_type = self._iscsi_source(root.find("source"), pool.storageVolLookupByName(names[0])), "network"
        elif kind in MADE:
            self.sweep_volumes(pool)
            fmt = "qcow2" if kind in ("dir", "fs", "netfs") else "raw"  # a file as nova's local disks are
            volume = pool.createXML(f"<volume><name>{PREFIX}{token}</name><capacity unit='bytes'>"
                                    f"{SCRATCH_BYTES}</capacity>"
                                    f"{'<target><format type=%s/></target>' % quoteattr(fmt) if fmt == 'qcow2' else ''}</volume>", 0)
            if kind == "rbd":  # libvirt takes no rbd volume as a disk of type 'volume': the network source
                src = root.find("source")
                hosts = "".join(f"<host name={quoteattr(h.get('name', ''))} port={quoteattr(h.get('port', '6789'))}/>"
                                for h in src.findall("host"))
                auth = src.find("auth")
                secret = auth.find("secret") if auth is not None else None
                auth_xml = (f"<auth username={quoteattr(auth.get('username', ''))}><secret type='ceph' "
                            f"uuid={quoteattr(secret.get('uuid', ''))}/></auth>" if secret is not None else "")
                source = (f"<source protocol='rbd' name={quoteattr(src.findtext('name', '') + '/' + volume.name())}>"
                          f"{hosts}</source>{auth_xml}")
                disk_type = "network"
            else:
                source, disk_type = f"<source pool={quoteattr(pool_name)} volume={quoteattr(volume.name())}/>", "volume"
        else:
            raise GuestError(f"smoke makes no disk in a {kind} pool")
        fmt = "qcow2" if volume is not None and kind in ("dir", "fs", "netfs") else "raw"
        return (f"<disk type='{disk_type}' device='disk'><driver name='qemu' type='{fmt}' cache='none'/>{source}"
                f"<target dev='{target}' bus='virtio'/></disk>", volume)

    @staticmethod
    def _iscsi_source(src, volume) -> str:
        """QEMU's own iSCSI initiator (libiscsi) on a LUN of an iscsi-direct pool, as the pool logs in."""
        from xml.sax.saxutils import quoteattr

        lun = volume.path().rsplit("-", 1)[-1] if "-lun-" in volume.path() else volume.name().rsplit(":", 1)[-1]
        host = src.find("host")
        hosts = f"<host name={quoteattr(host.get('name', ''))} port={quoteattr(host.get('port', '3260'))}/>"
        iqn = src.find("initiator/iqn")
        initiator = f"<initiator><iqn name={quoteattr(iqn.get('name', ''))}/></initiator>" if iqn is not None else ""
        auth, secret = src.find("auth"), src.find("auth/secret")
        auth_xml = (f"<auth username={quoteattr(auth.get('username', ''))}><secret type='iscsi' "
                    f"usage={quoteattr(secret.get('usage', ''))}/></auth>" if auth is not None and secret is not None else "")
        name = f"{src.find('device').get('path', '')}/{lun}"
        return f"<source protocol='iscsi' name={quoteattr(name)}>{hosts}{initiator}</source>{auth_xml}"

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
            except self.lv.libvirtError as exc:  # said in the console text the boot's error quotes
                chunks.append(f"\n[the console stream failed: {message(exc)}]")

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        seen.wait(timeout)
        try:
            stream.abort()
        except self.lv.libvirtError:  # the stream ended already (the guest's console closed): nothing to stop
            pass
        thread.join(2)
        return "".join(chunks)
