"""iSCSI storage: the kernel initiator (iscsi_tcp) for libvirt's iscsi pools."""

from __future__ import annotations

from provision import kernel
from provision.checks import CheckSet
from provision.hookspecs import hookimpl
from provision_plugins.storage.lvm import uses

checks = CheckSet()
ISCSI_TCP = kernel.Needs(config=("CONFIG_ISCSI_TCP",), modules=("iscsi_tcp",))


@hookimpl
def provision_probe():
    return kernel.probe(ISCSI_TCP)


@checks.register("kernel.iscsi", "the kernel has the iSCSI initiator (iscsi_tcp); iscsi-direct pools do not need it")
def kernel_iscsi(facts, settings):
    feature = kernel.kernel_feature(facts, ISCSI_TCP)
    return kernel.kernel_check(
        feature, what="iSCSI initiator", needed=uses(settings, "iscsi"),
        note="libvirt's iscsi-direct pools and QEMU's libiscsi do not need it",
        remedy="modprobe iscsi_tcp (apt-get install open-iscsi), or use an iscsi-direct pool",
    )


provision_check_catalog, provision_checks = checks.hooks()
