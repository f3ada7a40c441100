"""Ceph RBD storage: an rbd pool, the libvirt ceph secret, /etc/ceph/ceph.conf; krbd is not needed."""

from __future__ import annotations

from provision import installed, kernel
from provision.api import LibvirtObject, Remedy
from provision.checks import CheckSet
from provision.hookspecs import hookimpl
from provision.render import RenderedFile
from provision_plugins.storage.ceph import MON_PORT
from provision_plugins.storage.names import host_port
from provision_plugins.storage.pools import (
    entries,
    host_needs,
    images_on,
    libvirt_backend,
    pool_file,
    pool_objects,
    secret_file,
    software_with_qemu_driver,
)

checks = CheckSet()
RBD = kernel.Needs(config=("CONFIG_BLK_DEV_RBD",), modules=("rbd",))
SOFTWARE = installed.Software(
    "Ceph RBD software", pieces=(libvirt_backend("rbd"),),
    remedy="apt-get install libvirt-daemon-driver-storage-rbd qemu-block-extra (Debian/Ubuntu) or "
           "dnf install libvirt-daemon-driver-storage-rbd qemu-kvm-block-rbd (RHEL)")


@hookimpl
def provision_settings_schema():
    from provision_plugins.storage.rbd_schema import RbdPool

    return {"storage[]": RbdPool}


@hookimpl
def provision_probe():
    return {**kernel.probe(RBD), **installed.probe("storage.rbd", SOFTWARE)}


@checks.register("storage.rbd", "libvirt's rbd storage backend and QEMU's rbd block driver are installed, for rbd pools and images")
def rbd_software(facts, settings):
    needed, why_not = host_needs(settings, "rbd", also=images_on(settings, "rbd"))
    return software_with_qemu_driver(facts, "storage.rbd", SOFTWARE, "rbd", needed=needed, unneeded=why_not)


@checks.register("kernel.rbd", "the kernel has the Ceph rbd driver; QEMU's librbd does not need it")
def kernel_rbd(facts, settings):
    feature = kernel.kernel_feature(facts, RBD)
    return kernel.kernel_check(feature, what="Ceph rbd", needed=False,
                               note="QEMU's librbd does not need it; only krbd mapping does",
                               remedy="modprobe rbd, only if volumes are mapped with krbd")


def monitors(pool) -> list[tuple[str, int]]:
    return [host_port(m, MON_PORT) for m in pool["monitors"]]


@hookimpl
def provision_render(ctx):
    files = []
    pools = [s for s in ctx.settings.get("storage") or [] if s["type"] == "rbd"]
    for pool in pools:
        files.append(RenderedFile(pool_file(pool["name"]), ctx.render("libvirt/pool-rbd.xml.j2", pool=pool, monitors=monitors(pool))))
        files.append(RenderedFile(secret_file(pool["name"]), ctx.render("libvirt/secret-ceph.xml.j2", pool=pool)))
    by_conf: dict[str, list] = {}
    for pool in pools:
        by_conf.setdefault(pool["ceph_conf"], []).append(pool)
    for conf, members in by_conf.items():
        mons = sorted({m for p in members for m in monitors(p)})
        files.append(RenderedFile(conf, ctx.render("ceph/ceph.conf.j2", pools=members, monitors=mons)))
    return files


@hookimpl
def provision_apply_objects(ctx, files):
    """The pools, and the ceph secrets set from each key file (base64, as Ceph writes it) on the node."""
    return [LibvirtObject("secret", secret_file(p["name"]), value_file=p["key_file"], value_format="base64")
            for p in entries(ctx.settings, "rbd")] + pool_objects(ctx.settings, "rbd")


@checks.remedy("storage.rbd")
def install_rbd(facts, settings, result) -> Remedy:
    from provision_plugins.libvirt import SERVICES

    return Remedy(packages={"debian": ("libvirt-daemon-driver-storage-rbd", "qemu-block-extra", "ceph-common"),
                            "redhat": ("libvirt-daemon-driver-storage-rbd", "qemu-kvm-block-rbd", "ceph-common")},
                  services=SERVICES)


provision_check_catalog, provision_checks = checks.hooks()
provision_remedies = checks.remedies_hook()
