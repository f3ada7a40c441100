"""CPU virtualisation extensions: Intel VT-x (vmx), AMD-V (svm), s390x SIE, arm64 via /dev/kvm."""

from __future__ import annotations

import re

from provision.api import Remedy
from provision.checks import CheckSet, failed, passed, wanted_virt_type, warned
from provision.facts import Facts
from provision.hookspecs import hookimpl

checks = CheckSet()

EXTENSIONS = {"vmx": "Intel VT-x", "svm": "AMD-V", "sie": "s390x SIE"}
CPU_INFO = {"op": "read", "path": "/proc/cpuinfo", "first_paragraph": True}  # the first CPU is enough


@hookimpl
def provision_probe():
    return {
        "cpu.info": CPU_INFO,
        "kvm.device": {"op": "stat", "path": "/dev/kvm"},
    }


def cpu_flags(facts: Facts) -> set[str]:
    """Flags of the first CPU: x86 ``flags``, arm64 ``Features``, s390x ``features``."""
    text = facts.text("cpu.info") or ""
    match = re.search(r"^(?:flags|Features|features)\s*:\s*(.*)$", text, re.M)
    return set(match.group(1).split()) if match else set()


def virt_extension(facts: Facts) -> str | None:
    """The virtualisation extension the CPU shows (``vmx``, ``svm``, ``sie``), or ``None``.

    arm64 has no such flag: KVM there is usable when the kernel booted at EL2,
    which shows as ``/dev/kvm``; it is reported as ``el2``.
    """
    flags = cpu_flags(facts)
    for flag in EXTENSIONS:
        if flag in flags:
            return flag
    if facts.machine == "aarch64" and "error" not in facts.answer("kvm.device"):
        return "el2"
    return None


@checks.register("cpu.virt_extensions", "the CPU shows vmx (Intel VT-x) or svm (AMD-V); sie on s390x; EL2 on arm64")
def virt_extensions(facts: Facts, settings):
    evidence = facts.evidence("cpu.info") if facts.error("cpu.info") else {"/proc/cpuinfo flags": ""}
    ext = virt_extension(facts)
    if facts.error("cpu.info"):
        return failed("cannot read /proc/cpuinfo", evidence, "run the probe as a user that can read /proc/cpuinfo")
    flags = cpu_flags(facts)
    shown = sorted(flags & {*EXTENSIONS, "hypervisor"})
    evidence = {"/proc/cpuinfo flags": " ".join(shown) or "(none of vmx, svm, sie, hypervisor)", "arch": facts.machine}
    if ext == "el2":
        return passed("arm64: no CPU flag exists; /dev/kvm is present, so the kernel runs at EL2", evidence)
    if ext:
        return passed(f"{EXTENSIONS[ext]} ({ext}) present", evidence)
    message = "neither vmx (Intel VT-x) nor svm (AMD-V) among the CPU flags: guests need software emulation (qemu)"
    if facts.machine == "s390x":
        message = "no sie among the s390x CPU features: guests need software emulation (qemu)"
    remedy = ("enable VT-x/AMD-V in the firmware; on a VM, enable nested virtualisation on its host "
              "(e.g. kvm_intel nested=1 and <cpu mode='host-passthrough'>)")
    if wanted_virt_type(settings) == "kvm":
        return failed(message + "; the inventory pins virt_type kvm", evidence, remedy)
    return warned(message, evidence, remedy)


@checks.remedy("cpu.virt_extensions")
def in_the_firmware(facts: Facts, settings, result) -> Remedy:
    return Remedy(manual=result.remedy)  # the firmware's setting, or the VM host's: nothing on the node


provision_check_catalog, provision_checks = checks.hooks()
provision_remedies = checks.remedies_hook()
