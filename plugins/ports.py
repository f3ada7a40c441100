"""Ports a compute node serves: libvirt (16509, 16514), VNC (5900-5999), consoles (6080-6083)."""

from __future__ import annotations

from provision.checks import CheckSet, passed, warned
from provision.facts import Facts
from provision.hookspecs import hookimpl
from provision_plugins.libvirt import running_daemons

checks = CheckSet()

LIBVIRT_PORTS = (16509, 16514)
VNC_PORTS = range(5900, 6000)
CONSOLE_PORTS = range(6080, 6084)


@hookimpl
def provision_probe():
    return {"ports.listening": {"op": "listening"}, "node.processes": {"op": "processes"}}


@checks.register("ports.free", "libvirt 16509/16514, VNC 5900-5999 and consoles 6080-6083 are free (or libvirt's)")
def ports_free(facts: Facts, settings):
    listening = set(facts.answer("ports.listening").get("ports", []))
    wanted = {*LIBVIRT_PORTS, *VNC_PORTS, *CONSOLE_PORTS}
    taken = sorted(listening & wanted)
    libvirt_up = bool(running_daemons(facts))
    # libvirtd listening on its own ports is how it should be
    conflicts = [p for p in taken if not (p in LIBVIRT_PORTS and libvirt_up)]
    evidence = {"/proc/net/tcp LISTEN in range": ", ".join(map(str, taken)) or "none"}
    if conflicts:
        return warned(f"ports in use: {', '.join(map(str, conflicts))}", evidence,
                      "find the owner with ss -ltnp and move it; guests' VNC consoles and novnc need these ports")
    return passed("compute node ports are free" + (" (libvirt holds its own)" if taken else ""), evidence)


provision_check_catalog, provision_checks = checks.hooks()
