"""Ceph RBD storage: the kernel rbd driver, which QEMU's librbd does not need."""

from __future__ import annotations

from provision import kernel
from provision.checks import CheckSet
from provision.hookspecs import hookimpl

checks = CheckSet()
RBD = kernel.Needs(config=("CONFIG_BLK_DEV_RBD",), modules=("rbd",))


@hookimpl
def provision_probe():
    return kernel.probe(RBD)


@checks.register("kernel.rbd", "the kernel has the Ceph rbd driver; QEMU's librbd does not need it")
def kernel_rbd(facts, settings):
    feature = kernel.kernel_feature(facts, RBD)
    return kernel.kernel_check(feature, what="Ceph rbd", needed=False,
                               note="QEMU's librbd does not need it; only krbd mapping does",
                               remedy="modprobe rbd, only if volumes are mapped with krbd")


provision_check_catalog, provision_checks = checks.hooks()
