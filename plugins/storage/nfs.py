"""NFS storage: the kernel's NFS client."""

from __future__ import annotations

from provision import kernel
from provision.checks import CheckSet
from provision.hookspecs import hookimpl
from provision_plugins.storage.lvm import uses

checks = CheckSet()
NFS = kernel.Needs(config=("CONFIG_NFS_FS",), modules=("nfs", "nfsv4"), filesystems=("nfs", "nfs4"))


@hookimpl
def provision_probe():
    return kernel.probe(NFS)


@checks.register("kernel.nfs", "the kernel has an NFS client (nfs, nfs4), needed for netfs pools")
def kernel_nfs(facts, settings):
    feature = kernel.kernel_feature(facts, NFS)
    return kernel.kernel_check(feature, what="NFS client", needed=uses(settings, "nfs"),
                               remedy="modprobe nfs (apt-get install nfs-common for mount.nfs)")


provision_check_catalog, provision_checks = checks.hooks()
