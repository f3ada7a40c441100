"""802.1Q VLANs: the kernel's 8021q support."""

from __future__ import annotations

from provision import kernel
from provision.checks import CheckSet
from provision.hookspecs import hookimpl

checks = CheckSet()
VLAN = kernel.Needs(config=("CONFIG_VLAN_8021Q",), modules=("8021q",))


@hookimpl
def provision_probe():
    return kernel.probe(VLAN)


@checks.register("kernel.vlan", "the kernel has 802.1Q VLAN support (8021q)")
def kernel_vlan(facts, settings):
    feature = kernel.kernel_feature(facts, VLAN)
    needed = bool((settings.get("network") or {}).get("vlans"))
    return kernel.kernel_check(feature, what="802.1Q VLAN", needed=needed,
                               remedy="modprobe 8021q, or use a kernel built with CONFIG_VLAN_8021Q")


provision_check_catalog, provision_checks = checks.hooks()
