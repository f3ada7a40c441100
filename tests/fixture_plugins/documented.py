"""A plugin written from the hook documentation's example: it reads settings["virt_type"]."""

from provision.checks import CheckSet, passed

checks = CheckSet()


@checks.register("documented.virt_type", "says which virt_type the settings ask for (test plugin)")
def virt_type(facts, settings):
    return passed(f"the settings ask for {settings['virt_type']}", {})


provision_check_catalog, provision_checks = checks.hooks()
