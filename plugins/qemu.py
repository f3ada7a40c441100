"""QEMU: the system emulator for the node's architecture and its version against nova's minimum."""

from __future__ import annotations

from provision.checks import CheckSet, failed, passed, skipped
from provision.facts import Facts
from provision.hookspecs import hookimpl
from provision_plugins.versions import MIN_QEMU, dotted, version_check

checks = CheckSet()


@hookimpl
def provision_probe():
    return {
        "qemu.version": {"op": "run", "argv": ["qemu-system-{machine}", "--version"],
                         "argv0": ["qemu-system-{machine}", "/usr/libexec/qemu-kvm", "qemu-kvm"]},
    }


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

provision_check_catalog, provision_checks = checks.hooks()
