"""A third-party plugin, loaded only by tests (PROVISION_PLUGINS): a check that fails until a package the
mirror does not have is installed, with the remedy that installs it (apt's own reason must come back)."""

from provision.api import Remedy
from provision.checks import CheckSet, failed, passed
from provision.hookspecs import hookimpl

checks = CheckSet()
PACKAGE = "provision-test-no-such-package"


@hookimpl
def provision_probe():
    return {"demo.package": {"op": "exists", "path": f"/usr/share/doc/{PACKAGE}"}}


@checks.register("demo.package", f"{PACKAGE} is installed (test plugin)")
def demo_package(facts, settings):
    if facts.answer("demo.package").get("exists"):
        return passed(f"{PACKAGE} is installed")
    return failed(f"{PACKAGE} is not installed", {}, f"apt-get install {PACKAGE}")


@checks.remedy("demo.package")
def install(facts, settings, result):
    return Remedy(packages={"debian": (PACKAGE,)})


provision_check_catalog, provision_checks = checks.hooks()
provision_remedies = checks.remedies_hook()
