import pytest

from provision_plugins.cpu import virt_extensions
from tests.nodes import ENOENT, healthy_node

AUTO = {"virt_type": "auto"}
KVM = {"virt_type": "kvm"}


@pytest.mark.parametrize(
    ("machine", "cpu", "status", "words"),
    [
        ("x86_64", "intel_vtx", "pass", "Intel VT-x (vmx) present"),
        ("x86_64", "amd_v", "pass", "AMD-V (svm) present"),
        ("x86_64", "vm_noflags", "warn", "neither vmx (Intel VT-x) nor svm (AMD-V)"),
        ("x86_64", "pvm_host", "warn", "neither vmx (Intel VT-x) nor svm (AMD-V)"),
        ("aarch64", "aarch64", "pass", "arm64: no CPU flag exists; /dev/kvm is present"),
        ("s390x", "s390x", "pass", "s390x SIE (sie) present"),
    ],
)
def test_virt_extensions_from_recorded_cpuinfo(machine, cpu, status, words):
    result = virt_extensions(healthy_node(machine=machine, cpu=cpu), AUTO)
    assert result.status == status
    assert words in result.message
    assert "/proc/cpuinfo flags" in result.evidence


def test_missing_flags_fail_when_inventory_pins_kvm():
    result = virt_extensions(healthy_node(cpu="vm_noflags"), KVM)
    assert result.status == "fail"
    assert "pins virt_type kvm" in result.message
    assert "nested" in result.remedy


def test_aarch64_without_dev_kvm_has_no_extension():
    result = virt_extensions(healthy_node(machine="aarch64", cpu="aarch64", **{"kvm.device": ENOENT}), AUTO)
    assert result.status == "warn"


def test_unreadable_cpuinfo_fails_with_the_error_as_evidence():
    result = virt_extensions(healthy_node(**{"cpu.info": {"error": "EACCES: Permission denied"}}), AUTO)
    assert result.status == "fail"
    assert result.evidence == {"cpu.info": "EACCES: Permission denied"}
