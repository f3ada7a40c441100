"""A plugin that contradicts the built-in ones: a check id, a settings field and a probe key they own."""

from provision.checks import CheckSet, passed
from provision.hookspecs import hookimpl

checks = CheckSet()


@hookimpl
def provision_probe():
    return {"cpu.info": {"op": "read", "path": "/proc/version"}}


@hookimpl
def provision_settings_schema():
    return {"virt_type": (str, "kvm")}


@checks.register("kvm.device", "a second kvm.device (test plugin)")
def kvm_device(facts, settings):
    return passed("fine", {})


provision_check_catalog, provision_checks = checks.hooks()
