"""iSCSI storage: an iscsi (kernel initiator) or iscsi-direct (libiscsi) pool, with CHAP as a libvirt secret."""

from __future__ import annotations

from provision import installed, kernel
from provision.api import LibvirtObject, Remedy
from provision.checks import CheckSet
from provision.hookspecs import hookimpl
from provision.stages.render import RenderedFile
from provision_plugins.storage.names import host_port
from provision_plugins.storage.pools import (
    entries,
    host_needs,
    libvirt_backend,
    pool_file,
    pool_objects,
    secret_file,
    software_with_qemu_driver,
)

checks = CheckSet()
ISCSI_TCP = kernel.Needs(config=("CONFIG_ISCSI_TCP",), modules=("iscsi_tcp",))
INITIATOR = installed.Software(
    "iSCSI initiator software", programs=("iscsiadm",), pieces=(libvirt_backend("iscsi"),),
    remedy="apt-get install open-iscsi (Debian/Ubuntu) or dnf install iscsi-initiator-utils libvirt-daemon-driver-storage-iscsi (RHEL)")
DIRECT = installed.Software(
    "iscsi-direct software", pieces=(libvirt_backend("iscsi-direct"),),
    remedy="apt-get install libvirt-daemon-driver-storage-iscsi-direct qemu-block-extra (Debian/Ubuntu) or "
           "dnf install libvirt-daemon-driver-storage-iscsi-direct qemu-kvm-block-iscsi (RHEL)")


def _entries(settings, direct: bool) -> bool:
    """Whether the node has iscsi entries of this kind (iscsi-direct, or the kernel initiator's)."""
    return any((s or {}).get("type") == "iscsi" and bool(s.get("direct")) == direct for s in settings.get("storage") or [])


@hookimpl
def provision_settings_schema():
    from provision_plugins.storage.iscsi_schema import IscsiPool

    return {"storage[]": IscsiPool}


@hookimpl
def provision_probe():
    return {**kernel.probe(ISCSI_TCP), **installed.probe("storage.iscsi", INITIATOR, DIRECT)}


@checks.register("storage.iscsi", "iscsiadm and libvirt's iscsi backend (iscsi pools), or libvirt's iscsi-direct backend "
                                  "and QEMU's iscsi block driver (iscsi-direct pools), are installed")
def iscsi_software(facts, settings):
    from dataclasses import replace

    needed, why_not = host_needs(settings, "iscsi")
    results = ([installed.software_check(facts, "storage.iscsi", INITIATOR, needed=True, unneeded="")]
               if needed and _entries(settings, direct=False) else [])
    results += ([software_with_qemu_driver(facts, "storage.iscsi", DIRECT, "iscsi", needed=True, unneeded="")]
                if needed and _entries(settings, direct=True) else [])
    if not results:
        return installed.software_check(facts, "storage.iscsi", INITIATOR, needed=False, unneeded=why_not)
    failing = [r for r in results if r.status != "pass"]
    return replace(failing[0] if failing else results[0], message="; ".join(r.message for r in results),
                   evidence={k: v for r in results for k, v in r.evidence.items()},
                   remedy="; ".join(r.remedy for r in failing if r.remedy))


@checks.register("kernel.iscsi", "the kernel has the iSCSI initiator (iscsi_tcp); iscsi-direct pools do not need it")
def kernel_iscsi(facts, settings):
    feature = kernel.kernel_feature(facts, ISCSI_TCP)
    return kernel.kernel_check(
        feature, what="iSCSI initiator", needed=_entries(settings, direct=False),
        note="libvirt's iscsi-direct pools and QEMU's libiscsi do not need it",
        remedy="modprobe iscsi_tcp (apt-get install open-iscsi), or use an iscsi-direct pool",
    )


@hookimpl
def provision_render(ctx):
    files = []
    for pool in (s for s in ctx.settings.get("storage") or [] if s["type"] == "iscsi"):
        host, port = host_port(pool["portal"], 3260)
        usage = f"provision-{pool['name']}"
        files.append(RenderedFile(pool_file(pool["name"]), ctx.render(
            "libvirt/pool-iscsi.xml.j2", pool=pool, portal_host=host, portal_port=port, usage=usage)))
        if pool["chap"]:
            files.append(RenderedFile(secret_file(pool["name"]), ctx.render("libvirt/secret-iscsi.xml.j2", usage=usage)))
    return files


@hookimpl
def provision_apply_objects(ctx, files):
    """The pools, and the CHAP secrets set from each password file (plain text) on the node."""
    return [LibvirtObject("secret", secret_file(p["name"]), value_file=p["chap"]["password_file"], value_format="plain")
            for p in entries(ctx.settings, "iscsi") if p["chap"]] + pool_objects(ctx.settings, "iscsi")


# Debian's plain iscsi backend is in libvirt-daemon itself; RHEL splits every backend out
INITIATOR_PACKAGES = {"debian": ("open-iscsi",), "redhat": ("iscsi-initiator-utils", "libvirt-daemon-driver-storage-iscsi")}
DIRECT_PACKAGES = {"debian": ("libvirt-daemon-driver-storage-iscsi-direct", "qemu-block-extra"),
                   "redhat": ("libvirt-daemon-driver-storage-iscsi-direct", "qemu-kvm-block-iscsi")}


@checks.remedy("storage.iscsi")
def install_iscsi(facts, settings, result) -> Remedy:
    from provision_plugins.libvirt import SERVICES

    wanted = [INITIATOR_PACKAGES] * _entries(settings, direct=False) + [DIRECT_PACKAGES] * _entries(settings, direct=True)
    return Remedy(packages={f: tuple(n for p in wanted for n in p[f]) for f in ("debian", "redhat")}, services=SERVICES)


@checks.remedy("kernel.iscsi")
def load_iscsi_tcp(facts, settings, result) -> Remedy:
    return kernel.remedy(facts, ISCSI_TCP, "iscsi_tcp", packages=INITIATOR_PACKAGES)


@hookimpl
def provision_kernel_modules(settings):
    return ["iscsi_tcp"] if _entries(settings, direct=False) else []


provision_check_catalog, provision_checks = checks.hooks()
provision_remedies = checks.remedies_hook()
