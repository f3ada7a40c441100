"""libvirt: the daemon (host or containerised) and its version against nova's minimum."""

from __future__ import annotations

from provision.api import Remedy, Service
from provision.checks import CheckSet, failed, passed, skipped, warned
from provision.facts import Facts
from provision.hookspecs import hookimpl
from provision_plugins.versions import MIN_LIBVIRT, dotted, version_check

checks = CheckSet()

DAEMONS = ("libvirtd", "virtqemud")
SOCKETS = ("/run/libvirt/libvirt-sock", "/run/libvirt/virtqemud-sock")
PACKAGES = {"debian": ("libvirt-daemon-system", "libvirt-clients"), "redhat": ("libvirt-daemon-kvm", "libvirt-client")}
# the daemons, virtlogd first (libvirtd needs it); restarted after an install: libvirtd loads its drivers
# (a storage backend just installed) only when it starts. Storage plugins name them with their packages.
SERVICES = (Service("virtlogd", ("virtlogd", "-d"), ready="/run/libvirt/virtlogd-sock", restart_on_install=False),
            Service("libvirtd", ("libvirtd", "-d"), ready="/run/libvirt/libvirt-sock"))


@hookimpl
def provision_probe():
    ops = {f"libvirt.socket.{i}": {"op": "stat", "path": p} for i, p in enumerate(SOCKETS)}
    return {
        **ops,
        "node.processes": {"op": "processes"},
        "libvirt.version": {"op": "run", "argv": ["libvirtd", "--version"], "argv0": list(DAEMONS),
                            "version_cache": "libvirt"},
    }


def running_daemons(facts: Facts) -> list[str]:
    return sorted(set(DAEMONS) & set(facts.answer("node.processes").get("names", [])))


@checks.register("libvirt.daemon", "libvirtd (or virtqemud) runs on the host; with libvirt: container, it must not")
def libvirt_daemon(facts: Facts, settings):
    running = running_daemons(facts)
    sockets = [p for i, p in enumerate(SOCKETS) if facts.answer(f"libvirt.socket.{i}").get("kind") == "other"]
    evidence = {"running": ", ".join(running) or "none", "sockets": ", ".join(sockets) or "none"}
    mode = (settings.get("hypervisor") or {}).get("libvirt", "host")
    if mode == "container":
        if running:
            return failed(f"{running[0]} runs on the host, but the inventory says libvirt runs in a container: "
                          "the two will fight over guests and /run/libvirt", evidence,
                          f"stop and disable the host's {running[0]} (systemctl disable --now {running[0]})")
        return passed("no host libvirt daemon runs; the containerised one has the node to itself", evidence)
    if running and sockets:
        return passed(f"{running[0]} runs and listens on {sockets[0]}", evidence)
    if running:
        return warned(f"{running[0]} runs but no libvirt socket is in /run/libvirt", evidence,
                      "check the daemon's listen settings and logs")
    return failed("no libvirt daemon runs", evidence,
                  "start it: systemctl start libvirtd (or virtlogd -d && libvirtd -d without systemd)")


@checks.register("libvirt.version", f"libvirt is at least nova's minimum ({dotted(MIN_LIBVIRT)})")
def libvirt_version(facts: Facts, settings):
    ans = facts.answer("libvirt.version")
    if "error" in ans or ans.get("rc") != 0:
        mode = (settings.get("hypervisor") or {}).get("libvirt", "host")
        if mode == "container":
            return skipped("libvirt runs in a container; its version is the image's", facts.evidence("libvirt.version"))
        return failed("libvirt is not installed", facts.evidence("libvirt.version"),
                      "apt-get install libvirt-daemon-system (Debian/Ubuntu) or dnf install libvirt (RHEL)")
    return version_check(ans, product="libvirt", minimum=MIN_LIBVIRT, remedy="upgrade libvirt")

@checks.remedy("libvirt.daemon")
def start_libvirt(facts: Facts, settings, result) -> Remedy:
    if (settings.get("hypervisor") or {}).get("libvirt", "host") == "container":
        return Remedy(manual=result.remedy)  # provision does not stop a daemon it did not start
    return Remedy(packages=PACKAGES, services=SERVICES)


@checks.remedy("libvirt.version")
def install_libvirt(facts: Facts, settings, result) -> Remedy:
    if result.message == "libvirt is not installed":
        return Remedy(packages=PACKAGES)
    return Remedy(manual=f"{result.remedy}: the node's release has no libvirt new enough for nova")


provision_check_catalog, provision_checks = checks.hooks()
provision_remedies = checks.remedies_hook()
