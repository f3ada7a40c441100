"""Migration to another libvirt URI: live for a running guest, else the definition moves."""

from __future__ import annotations

from provision.guests import Change, GuestError
from provision_plugins.libvirt_guests.connection import Connection, message


class Migration(Connection):  # a part of LibvirtBackend: it uses the connection's members
    def migrate(self, name: str, to_uri: str, live: bool | None) -> Change:
        dom = self._domain(name)
        try:
            dest = self.lv.open(to_uri)
        except self.lv.libvirtError as exc:
            raise GuestError(f"cannot connect to {to_uri}: {message(exc)}") from None
        try:
            try:
                dest.lookupByName(name)
                raise GuestError(f"{to_uri} already has a guest named {name}; nothing was moved")
            except self.lv.libvirtError as exc:
                if exc.get_error_code() != self.lv.VIR_ERR_NO_DOMAIN:  # only "no such guest there" lets it go on
                    raise GuestError(f"cannot look for {name} at {to_uri}: {message(exc)}") from None
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
                raise GuestError(f"offline migration of {name}: {to_uri} refused the definition: {message(exc)}") from None
            self._call(dom, "undefine", dom.undefineFlags, self.lv.VIR_DOMAIN_UNDEFINE_NVRAM)
            return Change(name, f"migrated to {to_uri}", "offline",
                          "the definition moved; its disks must be reachable there (shared storage) or copied")
        finally:
            dest.close()
