"""NFS storage: a libvirt netfs pool, a systemd mount unit for nova's instances, the kernel's NFS client."""

from __future__ import annotations

from provision import installed, kernel
from provision.api import Remedy
from provision.checks import CheckSet
from provision.hookspecs import hookimpl
from provision.stages.render import RenderedFile
from provision_plugins.storage.pools import host_needs, libvirt_backend, pool_file, pool_objects, uses

checks = CheckSet()
NFS = kernel.Needs(config=("CONFIG_NFS_FS",), modules=("nfs", "nfsv4"), filesystems=("nfs", "nfs4"))
SOFTWARE = installed.Software(
    "NFS pool software", programs=("mount.nfs",), pieces=(libvirt_backend("fs"),),
    remedy="apt-get install nfs-common (Debian/Ubuntu) or dnf install nfs-utils libvirt-daemon-driver-storage-core (RHEL)")
INSTANCES = "/var/lib/nova/instances"


@hookimpl
def provision_settings_schema():
    from provision_plugins.storage.nfs_schema import NfsPool

    return {"storage[]": NfsPool}


@hookimpl
def provision_probe():
    return {**kernel.probe(NFS), **installed.probe("storage.nfs", SOFTWARE)}


@checks.register("storage.nfs", "mount.nfs and libvirt's fs storage backend are installed, for netfs pools")
def nfs_software(facts, settings):
    needed, why_not = host_needs(settings, "nfs")
    return installed.software_check(facts, "storage.nfs", SOFTWARE, needed=needed, unneeded=why_not)


@checks.register("kernel.nfs", "the kernel has an NFS client (nfs, nfs4), needed for netfs pools")
def kernel_nfs(facts, settings):
    feature = kernel.kernel_feature(facts, NFS)
    return kernel.kernel_check(feature, what="NFS client", needed=uses(settings, "nfs"),
                               remedy="modprobe nfs (apt-get install nfs-common for mount.nfs)")


def systemd_escape_path(path: str) -> str:
    """systemd's unit name for a mount point: /var/lib/nova/instances -> var-lib-nova-instances."""
    out = []
    for i, ch in enumerate(path.strip("/")):
        if ch == "/":
            out.append("-")
        elif ch.isascii() and (ch.isalnum() or ch in ":_" or (ch == "." and i > 0)):
            out.append(ch)
        else:
            out.extend(f"\\x{b:02x}" for b in ch.encode())
    return "".join(out) or "-"


@hookimpl
def provision_render(ctx):
    files = []
    for pool in (s for s in ctx.settings.get("storage") or [] if s["type"] == "nfs"):
        files.append(RenderedFile(pool_file(pool["name"]), ctx.render("libvirt/pool-netfs.xml.j2", pool=pool)))
        if pool["mountpoint"].rstrip("/") == INSTANCES:
            server = f"[{pool['server']}]" if ":" in pool["server"] else pool["server"]
            unit = f"/etc/systemd/system/{systemd_escape_path(pool['mountpoint'])}.mount"
            files.append(RenderedFile(unit, ctx.render("systemd/nfs.mount.j2", pool=pool, what=f"{server}:{pool['export']}")))
    return files


PACKAGES = {"debian": ("nfs-common",), "redhat": ("nfs-utils", "libvirt-daemon-driver-storage-core")}


@checks.remedy("storage.nfs")
def install_nfs(facts, settings, result) -> Remedy:
    from provision_plugins.libvirt import SERVICES

    return Remedy(packages=PACKAGES, services=SERVICES)


@checks.remedy("kernel.nfs")
def load_nfs(facts, settings, result) -> Remedy:
    return kernel.remedy(facts, NFS, "nfs", packages=PACKAGES)


@hookimpl
def provision_kernel_modules(settings):
    return ["nfs"] if uses(settings, "nfs") else []


provision_check_catalog, provision_checks = checks.hooks()
provision_remedies = checks.remedies_hook()


@hookimpl
def provision_apply_objects(ctx, files):
    return pool_objects(ctx.settings, "nfs")
