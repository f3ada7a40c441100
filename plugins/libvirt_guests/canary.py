"""The smoke test's canary: a tiny kernel and initramfs booted transient until a marker on its console."""

from __future__ import annotations

import os
import time
import uuid

from provision.guests import GuestError, GuestSpec, render_domain_xml
from provision_plugins.libvirt_guests.connection import Connection, message


class Canary(Connection):  # a part of LibvirtBackend: it uses the connection's members
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
            raise GuestError(f"canary on {self.uri}: {message(exc)}") from None
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
