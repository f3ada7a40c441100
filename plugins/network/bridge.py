"""Linux bridges: the kernel's bridge support."""

from __future__ import annotations

from provision import kernel
from provision.checks import CheckSet
from provision.hookspecs import hookimpl

checks = CheckSet()
BRIDGE = kernel.Needs(config=("CONFIG_BRIDGE",), modules=("bridge",))


@hookimpl
def provision_probe():
    return kernel.probe(BRIDGE)


@checks.register("kernel.bridge", "the kernel has Linux bridge support (bridge)")
def kernel_bridge(facts, settings):
    feature = kernel.kernel_feature(facts, BRIDGE)
    needed = bool((settings.get("network") or {}).get("bridges")) or bool((settings.get("network") or {}).get("nat"))
    return kernel.kernel_check(feature, what="Linux bridge", needed=needed, remedy="modprobe bridge")


provision_check_catalog, provision_checks = checks.hooks()
