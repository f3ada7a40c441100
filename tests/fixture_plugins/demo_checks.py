"""A third-party plugin, loaded only by tests (PROVISION_PLUGINS), with one failing and one warning check."""

from provision.checks import CheckSet, failed, warned
from provision.hookspecs import hookimpl

checks = CheckSet()


@hookimpl
def provision_probe():
    return {"demo.hostname": {"op": "read", "path": "/etc/hostname"}}


@checks.register("demo.fails", "always fails (test plugin)")
def demo_fails(facts, settings):
    return failed("demo failure", facts.evidence("demo.hostname"), "nothing to do: it is a test plugin")


@checks.register("demo.warns", "always warns (test plugin)")
def demo_warns(facts, settings):
    return warned("demo warning", {}, "none")


provision_check_catalog, provision_checks = checks.hooks()
