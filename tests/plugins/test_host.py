import pytest

from provision_plugins.host import host_cgroups, host_hypervisor, host_iommu, host_tun, host_vhost_net
from tests.nodes import ENOENT, healthy_node


def dmi(vendor, product):
    return {
        "host.dmi.sys_vendor": {"path": "/sys/class/dmi/id/sys_vendor", "text": vendor + "\n"},
        "host.dmi.product_name": {"path": "/sys/class/dmi/id/product_name", "text": product + "\n"},
        "host.dmi.bios_vendor": ENOENT,
        "host.dmi.board_vendor": ENOENT,
    }


NO_DMI = {k: ENOENT for k in dmi("", "")}


@pytest.mark.parametrize(
    ("cpu", "overrides", "status", "words"),
    [
        ("intel_vtx", {}, "pass", "bare metal"),
        ("vm_noflags", dmi("QEMU", "Standard PC (Q35 + ICH9, 2009)"), "warn", "a VM under KVM (QEMU) without vmx/svm"),
        ("vm_noflags", dmi("VMware, Inc.", "VMware7,1"), "warn", "a VM under VMware"),
        ("vm_noflags", dmi("Microsoft Corporation", "Virtual Machine"), "warn", "a VM under Hyper-V"),
        ("vm_noflags", dmi("Amazon EC2", "m5.large"), "warn", "a VM under KVM (AWS Nitro)"),
        ("vm_noflags", {**NO_DMI, "host.hypervisor_type": {"path": "/sys/hypervisor/type", "text": "xen\n"}},
         "warn", "a VM under Xen"),
        ("pvm_host", NO_DMI, "warn", "no DMI tables: a microVM"),
        ("intel_vtx", dmi("QEMU", "Standard PC"), "pass", "with nested virtualisation exposed"),
    ],
)
def test_hypervisor_detection(cpu, overrides, status, words):
    result = host_hypervisor(healthy_node(cpu=cpu, **overrides), {})
    assert result.status == status
    assert words in result.message, result.message


def test_tun_missing_fails_and_vhost_missing_warns():
    facts = healthy_node(**{"host.tun": ENOENT, "host.vhost_net": ENOENT})
    assert host_tun(facts, {}).status == "fail"
    assert "guests cannot get tap NICs" in host_tun(facts, {}).message
    assert host_vhost_net(facts, {}).status == "warn"


V1_MOUNTS = "\n".join(
    f"cgroup /sys/fs/cgroup/{c} cgroup rw,relatime,{c} 0 0" for c in ("cpu", "cpuset", "memory", "blkio", "pids")
)


@pytest.mark.parametrize(
    ("controllers", "mounts", "status", "words"),
    [
        ("cpuset cpu io memory pids", "", "pass", "cgroup v2 with cpu, cpuset, io, memory, pids"),
        ("cpuset cpu memory pids", "", "warn", "cgroup v2 lacks io"),
        (None, V1_MOUNTS, "pass", "cgroup v1 with"),
        (None, V1_MOUNTS.replace("blkio", "freezer"), "warn", "cgroup v1 lacks blkio"),
        (None, "", "fail", "no cgroup filesystem is mounted"),
    ],
)
def test_cgroups_v1_and_v2(controllers, mounts, status, words):
    ctl = ENOENT if controllers is None else {"path": "/sys/fs/cgroup/cgroup.controllers", "text": controllers}
    facts = healthy_node(**{"host.cgroup2_controllers": ctl, "host.mounts": {"path": "/proc/self/mounts", "text": mounts}})
    result = host_cgroups(facts, {})
    assert (result.status, words in result.message) == (status, True), result.message


def test_iommu():
    assert host_iommu(healthy_node(), {}).status == "pass"
    result = host_iommu(healthy_node(**{"host.iommu_groups": ENOENT}), {})
    assert result.status == "warn"
    assert "intel_iommu=on" in result.remedy
