"""Remedies without a node: the node module's plan is pure (decided from read state), the merge of
plugins' remedies, the refusal's words, and the plugin API's guards against a name that would be an
option."""

from __future__ import annotations

import pytest

from provision.api import Remedy, Service
from provision.checks import CheckSet, failed, warned
from provision.node.remedy import plan
from provision.results import CheckResult
from provision.stages.remedies import refusal, spec_for

LIBVIRTD = {"name": "libvirtd", "start": ["libvirtd", "-d"], "ready": "/run/libvirt/libvirt-sock",
            "restart_on_install": True}


def state(**changes):
    read = {"family": "debian", "manager": "apt-get", "os": "ID=debian VERSION_ID=12", "installed": [],
            "modules": [], "devices": {}, "groups": ["root"], "running": [], "systemd": False}
    read.update(changes)
    return read


def actions(steps):
    return [(s["kind"], s["target"], s["action"]) for s in steps]


def test_only_what_is_missing_is_planned():
    spec = {"packages": {"debian": ["qemu-system-x86", "libvirt-daemon-system"]}, "modules": ["8021q", "nf_nat"],
            "devices": [["/dev/kvm", "kvm", "0660"]], "services": [LIBVIRTD]}
    steps = plan(spec, state(installed=["qemu-system-x86"], modules=["nf_nat"],
                             devices={"/dev/kvm": {"group": "root", "mode": "0600", "char": True}}))
    assert actions(steps) == [("package", "qemu-system-x86", "unchanged"), ("package", "libvirt-daemon-system", "install"),
                              ("module", "8021q", "load"), ("module", "nf_nat", "unchanged"),
                              ("device", "/dev/kvm", "update"), ("service", "libvirtd", "start")]
    assert steps[1]["why"] == "not installed (apt-get; an install is not rolled back)"
    assert steps[4]["why"] == "group root mode 0600, wanted group kvm mode 0660 (a system group kvm is made)"
    assert steps[5]["why"] == "not running (started directly: systemd is not PID 1)"


def test_a_running_daemon_is_restarted_only_when_something_is_installed():
    spec = {"packages": {"debian": ["qemu-block-extra"]}, "services": [LIBVIRTD]}
    assert actions(plan(spec, state(running=["libvirtd"], systemd=True)))[-1] == ("service", "libvirtd", "restart")
    converged = plan(spec, state(running=["libvirtd"], installed=["qemu-block-extra"]))
    assert {s["action"] for s in converged} == {"unchanged"}


def test_no_package_manager_is_refused_naming_the_node_and_the_packages():
    spec = {"packages": {"debian": ["libvirt-daemon-system"], "redhat": ["libvirt-daemon-kvm"]}}
    (step,) = plan(spec, state(family=None, manager=None, os="ID=alpine VERSION_ID=3.20"))
    assert step["action"] == "failed"
    assert step["why"] == ("the node has neither apt-get nor dnf (ID=alpine VERSION_ID=3.20); install the packages with "
                           "its own package manager: debian: libvirt-daemon-system; redhat: libvirt-daemon-kvm")
    (step,) = plan({"packages": {"debian": ["x"]}}, state(family="redhat", manager="dnf"))
    assert step["why"] == "no plugin names packages for redhat nodes (ID=debian VERSION_ID=12)"


def test_a_missing_device_waits_for_its_module_or_fails():
    spec = {"devices": [["/dev/kvm", "kvm", "0660"]]}
    missing = {"/dev/kvm": {"error": "No such file or directory"}}
    (step,) = plan(spec, state(devices=missing))
    assert (step["action"], step["why"]) == ("failed", "/dev/kvm: No such file or directory (the kernel module that "
                                                       "makes it is not loaded)")
    steps = plan({**spec, "modules": ["kvm_intel"]}, state(devices=missing))
    assert actions(steps) == [("module", "kvm_intel", "load"), ("device", "/dev/kvm", "update")]


def test_remedies_merge_each_thing_once_in_plugin_order():
    services = (Service("logd", ("logd", "--daemon")), Service("mgmtd", ("mgmtd", "--daemon")))
    spec = spec_for([Remedy("a", {"debian": ("kmod", "lvm2")}, modules=("dm_mod",), services=services),
                     Remedy("b", {"debian": ("kmod", "nfs-common"), "redhat": ("nfs-utils",)}, modules=("nfs", "dm_mod"),
                            services=services[1:])], check=True, timeout=5)
    assert spec["packages"] == {"debian": ["kmod", "lvm2", "nfs-common"], "redhat": ["nfs-utils"]}
    assert spec["modules"] == ["dm_mod", "nfs"]
    assert [s["name"] for s in spec["services"]] == ["logd", "mgmtd"]


def test_the_refusal_names_what_no_remedy_fixes_and_what_the_operator_must_do():
    failing = [CheckResult("qemu.binary", "fail", "no QEMU"), CheckResult("host.iommu", "fail", "no IOMMU")]
    remedies = [Remedy("qemu.binary", {"debian": ("qemu-system-x86",)}), Remedy("host.iommu", manual="reboot with intel_iommu=on")]
    assert refusal(failing, remedies, enabled=True) == ("refused by preflight, nothing was changed: host.iommu: no IOMMU "
                                                        "(apply cannot do this live: reboot with intel_iommu=on)")
    assert refusal(failing[:1], remedies, enabled=True) == ""
    assert refusal(failing[:1], remedies, enabled=False) == ("refused by preflight, nothing was changed: qemu.binary: no "
                                                             "QEMU (apply would fix it, but remedies are off)")


def test_a_checkset_offers_warnings_only_to_remedies_that_ask_for_them():
    checks = CheckSet()
    checks.remedy("demo.device", warnings=True)(lambda facts, settings, result: Remedy(devices=(("/dev/kvm", "kvm", "0660"),)))
    checks.remedy("demo.module")(lambda facts, settings, result: Remedy(modules=("8021q",)))
    results = [CheckResult("demo.device", "warn", ""), CheckResult("demo.module", "warn", "")]
    assert [r.check for r in checks.remedies(None, {}, results)] == ["demo.device"]
    results = [CheckResult("demo.module", "fail", ""), CheckResult("other.check", "fail", "")]
    assert [r.check for r in checks.remedies(None, {}, results)] == ["demo.module"]
    assert failed("x").status == "fail" and warned("x").status == "warn"


@pytest.mark.parametrize("bad, message", [
    ({"packages": {"debian": ("-o APT::Get::AllowUnauthenticated=1",)}}, "not a package name"),
    ({"packages": {"debian": ("qemu; rm -rf /",)}}, "not a package name"),
    ({"packages": {"alpine": ("qemu",)}}, "unknown package family 'alpine'"),
    ({"modules": ("--force",)}, "not a module name"),
    ({"devices": (("/etc/shadow", "kvm", "0660"),)}, "not a device, group and mode"),
    ({"devices": (("/dev/kvm", "kvm", "4777"),)}, "not a device, group and mode"),
])
def test_a_remedy_refuses_a_name_that_would_be_an_option_or_a_command(bad, message):
    with pytest.raises(ValueError, match=message):
        Remedy("demo.check", **bad)
