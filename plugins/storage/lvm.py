"""LVM storage: logical volumes need device-mapper."""

from __future__ import annotations

from provision import kernel
from provision.checks import CheckSet
from provision.hookspecs import hookimpl

checks = CheckSet()
DM = kernel.Needs(config=("CONFIG_BLK_DEV_DM",), modules=("dm_mod",))


def uses(settings, kind: str) -> bool:
    return any((entry or {}).get("type") == kind for entry in settings.get("storage") or [])


@hookimpl
def provision_probe():
    return kernel.probe(DM)


@checks.register("kernel.device_mapper", "the kernel has device-mapper (dm_mod), needed to activate LVM logical volumes")
def kernel_device_mapper(facts, settings):
    feature = kernel.kernel_feature(facts, DM)
    needed = uses(settings, "lvm") or (settings.get("hypervisor") or {}).get("images_type") == "lvm"
    return kernel.kernel_check(feature, what="device-mapper", needed=needed,
                               note="LVM volume groups can be created, but logical volumes cannot be activated"
                               if not feature.usable else "", remedy="modprobe dm_mod")


provision_check_catalog, provision_checks = checks.hooks()
