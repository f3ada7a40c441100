"""QEMU: the system emulator for the node's architecture and its version against nova's minimum."""

from __future__ import annotations

from provision.api import Remedy
from provision.checks import CheckSet, failed, passed, skipped
from provision.facts import Facts
from provision.hookspecs import hookimpl
from provision_plugins.versions import MIN_QEMU, dotted, version_check

checks = CheckSet()
EMULATOR = ["qemu-system-{machine}", "/usr/libexec/qemu-kvm", "qemu-kvm"]
# where distributions put QEMU's loadable modules: Debian/Ubuntu, RHEL, Fedora/SUSE, Arch
MODULE_DIRS = ("/usr/lib/*/qemu", "/usr/lib64/qemu-kvm", "/usr/lib64/qemu", "/usr/lib/qemu")
MODULE_GLOBS = tuple(f"{d}/*.so" for d in MODULE_DIRS)


@hookimpl
def provision_probe():
    return {
        "qemu.version": {"op": "run", "argv": ["qemu-system-{machine}", "--version"], "argv0": EMULATOR,
                         "version_cache": "qemu"},
        "qemu.modules": {"op": "installed", "globs": list(MODULE_GLOBS)},
        # only a QEMU built without modules is asked: a modular one lists drivers whether installed or not
        "qemu.formats": {"op": "run", "argv": ["qemu-system-{machine}", "-drive", "format=help"], "argv0": EMULATOR,
                         "unless_glob": MODULE_GLOBS},
    }


def block_driver(facts: Facts, name: str) -> tuple[bool, str]:
    """Whether the node's QEMU can open ``name`` disks (rbd, iscsi), and how that was told.

    A modular QEMU (Debian's qemu-block-extra, RHEL's qemu-kvm-block-rbd) has the driver only
    when its module file is installed, although ``-drive format=help`` names it either way; a
    QEMU built without modules has exactly the drivers that list names.
    """
    modules = [m for matches in (facts.answer("qemu.modules").get("globs") or {}).values() for m in matches]
    if modules:
        hits = [m for m in modules if m.endswith(f"/block-{name}.so")]
        if hits:
            return True, f"QEMU's {name} driver is installed ({hits[0]})"
        return False, f"QEMU's block drivers are loadable modules ({modules[0].rsplit('/', 1)[0]}) and block-{name}.so is not installed"
    formats = facts.answer("qemu.formats")
    listed = (formats.get("stdout") or "").split("\n", 1)[0].split(":", 1)[-1].split()
    if formats.get("rc") == 0 and listed:
        return name in listed, (f"QEMU is built without loadable modules and {'has' if name in listed else 'lacks'} "
                                f"the {name} driver (-drive format=help)")
    return False, "cannot tell: no QEMU modules found and no QEMU to ask (" + (facts.error("qemu.formats") or "no answer") + ")"


@checks.register("qemu.binary", "QEMU's system emulator for the node's architecture is installed")
def qemu_binary(facts: Facts, settings):
    ans = facts.answer("qemu.version")
    if "error" in ans:
        return failed(f"no QEMU system emulator for {facts.machine}", {"qemu-system-" + facts.machine: ans["error"]},
                      "apt-get install qemu-system-x86 (Debian/Ubuntu) or dnf install qemu-kvm (RHEL)")
    if ans.get("rc") != 0:
        return failed(f"{ans['program']} --version exited {ans['rc']}", {ans["program"]: ans.get("stderr", "")[:200]},
                      "reinstall QEMU")
    return passed(f"{ans['program']} is installed", {"program": ans["program"]})


@checks.register("qemu.version", f"QEMU is at least nova's minimum ({dotted(MIN_QEMU)})")
def qemu_version(facts: Facts, settings):
    ans = facts.answer("qemu.version")
    if "error" in ans or ans.get("rc") != 0:
        return skipped("no QEMU to ask", facts.evidence("qemu.version"))
    return version_check(ans, product="QEMU", minimum=MIN_QEMU,
                         remedy="upgrade QEMU (e.g. from the distribution's backports or cloud archive)")

# Debian's emulator package for each architecture (qemu-utils brings qemu-img); RHEL's qemu-kvm is one for all
DEBIAN_EMULATOR = {"x86_64": "qemu-system-x86", "aarch64": "qemu-system-arm", "ppc64le": "qemu-system-ppc",
                   "s390x": "qemu-system-s390x"}


def packages(machine: str) -> dict[str, tuple[str, ...]]:
    return {"debian": (DEBIAN_EMULATOR.get(machine, "qemu-system"), "qemu-utils"), "redhat": ("qemu-kvm",)}


@checks.remedy("qemu.binary")
def install_qemu(facts: Facts, settings, result) -> Remedy:
    if "error" in facts.answer("qemu.version"):
        return Remedy(packages=packages(facts.machine))
    return Remedy(manual=f"{result.message}: reinstall QEMU")


@checks.remedy("qemu.version")
def upgrade_qemu(facts: Facts, settings, result) -> Remedy:
    return Remedy(manual=f"{result.remedy}: the node's release has no QEMU new enough for nova")


provision_check_catalog, provision_checks = checks.hooks()
provision_remedies = checks.remedies_hook()
