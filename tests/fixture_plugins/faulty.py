"""A plugin with faults, loaded only by tests: a check that raises, and a probe operation with a bad argument."""

from provision.checks import CheckSet, passed
from provision.hookspecs import hookimpl

checks = CheckSet()


@hookimpl
def provision_probe():
    return {"faulty.read": {"op": "read", "path": 42}}


@checks.register("faulty.raises", "raises (test plugin)")
def raises(facts, settings):
    raise RuntimeError("the [plugin] fell over")


@checks.register("faulty.reads", "reports what its bad probe operation gave (test plugin)")
def reads(facts, settings):
    return passed(f"probe said: {facts.error('faulty.read')}", {})


provision_check_catalog, provision_checks = checks.hooks()
