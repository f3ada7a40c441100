import pytest

from provision_plugins.kvm import kvm_api, kvm_device, kvm_module, kvm_run, provision_virt_decision
from tests.nodes import ENOENT, PASSWD, healthy_node

AUTO = {"virt_type": "auto"}
KVM = {"virt_type": "kvm"}
PVM_MODULES = {"path": "/sys/module", "names": ["kvm", "kvm_pvm"]}


def dev(mode, uid=0, gid=107, kind="char"):
    return {"path": "/dev/kvm", "mode": mode, "uid": uid, "gid": gid, "kind": kind}


@pytest.mark.parametrize(
    ("device", "status", "words"),
    [
        (dev(0o660), "pass", "read-write for QEMU's user libvirt-qemu"),
        (dev(0o600, gid=0), "fail", "not read-write for QEMU's user libvirt-qemu (mode 0600)"),
        (dev(0o640), "fail", "not read-write"),
        (dev(0o666, gid=0), "pass", "read-write"),
        (dev(0o660, kind="file"), "warn", "is a file, not a character device"),
        (ENOENT, "warn", "/dev/kvm is missing"),
    ],
)
def test_kvm_device_permissions_for_qemus_user(device, status, words):
    result = kvm_device(healthy_node(**{"kvm.device": device}), AUTO)
    assert (result.status, words in result.message) == (status, True), result.message


def test_kvm_device_root_only_names_the_udev_remedy():
    result = kvm_device(healthy_node(**{"kvm.device": dev(0o600, gid=0)}), AUTO)
    assert "chgrp kvm /dev/kvm && chmod 0660 /dev/kvm" in result.remedy
    assert result.evidence["/dev/kvm"] == "char mode 0600 uid 0 gid 0"


def test_qemu_user_from_qemu_conf_on_rhel():
    passwd = PASSWD + "qemu:x:107:107:qemu user:/:/sbin/nologin\n"
    facts = healthy_node(**{
        "kvm.qemu_conf": {"path": "/etc/libvirt/qemu.conf", "text": 'user = "qemu"\n'},
        "kvm.passwd": {"path": "/etc/passwd", "text": passwd},
        "kvm.device": dev(0o600, uid=107, gid=36),
    })
    result = kvm_device(facts, AUTO)
    assert result.status == "pass"
    assert result.evidence["qemu user"] == "qemu (/etc/libvirt/qemu.conf user)"


def test_unknown_qemu_user_warns():
    facts = healthy_node(**{"kvm.passwd": {"path": "/etc/passwd", "text": "root:x:0:0::/root:/bin/sh\n"}})
    result = kvm_device(facts, AUTO)
    assert result.status == "warn"
    assert "cannot tell which user QEMU runs as" in result.message


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ({"path": "/dev/kvm", "results": [{"ret": 12}, {"ret": 4}]}, "KVM_GET_API_VERSION = 12"),
        ({"path": "/dev/kvm", "results": [{"ret": 11}]}, "returned 11, expected 12"),
        ({"path": "/dev/kvm", "results": [{"error": "ENOTTY: Inappropriate ioctl for device"}]}, "ENOTTY"),
        ({"path": "/dev/kvm", "results": [{"ret": 12}, {"error": "EINVAL: Invalid argument"}]},
         "KVM_CREATE_VM failed: EINVAL"),
        ({"error": "ENOENT: No such file or directory"}, "cannot open /dev/kvm"),
    ],
)
def test_kvm_api_answers(answer, words):
    result = kvm_api(healthy_node(**{"kvm.api": answer}), AUTO)
    assert words in result.message
    assert result.status == ("pass" if "= 12" in words else "warn")


def test_kvm_module_reports_nested_and_pvm():
    assert kvm_module(healthy_node(), AUTO).message == "kvm_intel present (Intel VT-x); nested on"
    pvm = healthy_node(**{"kernel.sys_module": PVM_MODULES, "kernel.modules": ENOENT, "kvm.nested_intel": ENOENT})
    result = kvm_module(pvm, KVM)
    assert result.status == "fail"
    assert "kvm_pvm (PVM (paravirtual, no VT-x/AMD-V))" in result.message


@pytest.mark.parametrize(
    ("machine", "cpu", "overrides", "virt_type", "cpu_mode", "reason"),
    [
        ("x86_64", "intel_vtx", {}, "kvm", "host-model", "CPU shows vmx (Intel VT-x)"),
        ("x86_64", "amd_v", {}, "kvm", "host-model", "CPU shows svm (AMD-V)"),
        ("aarch64", "aarch64", {}, "kvm", "host-passthrough", "CPU shows el2"),
        ("s390x", "s390x", {}, "kvm", "host-model", "CPU shows sie"),
        # PVM: /dev/kvm answers, the CPU shows no vmx/svm -> stock guests hang -> qemu
        ("x86_64", "pvm_host", {"kernel.sys_module": PVM_MODULES}, "qemu", "none", "stock guests hang there"),
        ("x86_64", "vm_noflags", {"kvm.device": ENOENT, "kvm.api": ENOENT}, "qemu", "none", "cannot open /dev/kvm"),
        ("x86_64", "intel_vtx", {"kvm.device": dev(0o600, gid=0)}, "qemu", "none", "not read-write"),
        ("x86_64", "intel_vtx", {"kvm.api": {"path": "/dev/kvm", "results": [{"ret": 12}, {"error": "EBUSY: x"}]}},
         "qemu", "none", "KVM_CREATE_VM failed"),
        # vmx shown, the API answers, but a vCPU does not run (firmware-disabled VT-x, a broken nested set-up)
        ("x86_64", "intel_vtx", {"kvm.run": {"exits": [{"kind": "timeout"}], "ms": 500.4}}, "qemu", "none",
         "a vCPU did not run as expected (timeout)"),
        ("x86_64", "intel_vtx", {"kvm.run": {"exits": [{"kind": "exit 8"}], "ms": 0.2}}, "qemu", "none",
         "a vCPU did not run as expected (exit 8)"),
    ],
)
def test_virt_decision(machine, cpu, overrides, virt_type, cpu_mode, reason):
    decision = provision_virt_decision(healthy_node(machine=machine, cpu=cpu, **overrides), AUTO)
    assert (decision.virt_type, decision.cpu_mode) == (virt_type, cpu_mode)
    assert any(reason in r for r in decision.reasons), decision.reasons


def test_decision_says_when_a_pinned_kvm_cannot_be_met():
    decision = provision_virt_decision(healthy_node(cpu="vm_noflags"), KVM)
    assert decision.virt_type == "qemu"
    assert "the inventory pins virt_type kvm, which this node cannot run" in decision.reasons



@pytest.mark.parametrize(
    ("answer", "status", "message"),
    [
        (None, "pass", "a vCPU ran real-mode code: out 0x3f8 = 0x42, hlt, in 1.1 ms"),
        ({"exits": [{"kind": "io", "port": 0x3F8, "out": True, "byte": 0x42}, {"kind": "timeout"}], "ms": 501.0},
         "warn", "a vCPU did not run as expected (out 0x3f8 = 0x42, timeout): the exits were not the expected "
                 "out 0x3f8 = 0x42, hlt"),
        ({"error": "EINTR: Interrupted system call", "exits": [{"kind": "exit 17"}]}, "warn",
         "a vCPU did not run as expected (exit 17): EINTR: Interrupted system call"),
        ({"error": "ENOENT: No such file or directory", "exits": []}, "skip",
         "not run: no vCPU could be made: ENOENT: No such file or directory"),
        ({"skipped": "the vCPU test is written for x86_64"}, "skip", "not run: the vCPU test is written for x86_64"),
    ],
)
def test_kvm_run_reads_the_exits_of_the_vcpu(answer, status, message):
    """With virt_type auto a vCPU that does not run is a warning (the node falls back to qemu); a pinned
    kvm makes it a failure, as for kvm.api."""
    facts = healthy_node() if answer is None else healthy_node(**{"kvm.run": answer})
    result = kvm_run(facts, AUTO)
    assert (result.status, result.message) == (status, message)


@pytest.mark.root  # /dev/kvm is root:kvm 0660
def test_kvm_run_on_this_machine_runs_the_vcpu_or_says_why_not():
    """The real probe operation, here: /dev/kvm runs the guest (this PVM host does) or is not there."""
    import os

    from provision.node import probe_devices as probe_script

    answer = probe_script.op_kvm_run({"path": "/dev/kvm", "timeout": 0.5})
    if not os.path.exists("/dev/kvm"):
        assert "error" in answer and answer["exits"] == []
    else:
        assert answer["exits"] == [{"kind": "io", "port": 0x3F8, "out": True, "byte": 0x42}, {"kind": "hlt"}], answer
    assert probe_script.op_kvm_run({"path": "/dev/null"})["error"].startswith("ENOTTY")



def test_a_vcpu_that_does_not_run_fails_a_pinned_kvm():
    result = kvm_run(healthy_node(**{"kvm.run": {"exits": [{"kind": "timeout"}], "ms": 500.0}}), KVM)
    assert result.status == "fail" and result.message.startswith("a vCPU did not run as expected (timeout)")


NESTED = {"virt_type": "auto", "hypervisor": {"nested": True}}


def test_nested_is_checked_only_where_the_inventory_asks_and_names_the_reload():
    from provision_plugins.kvm import kvm_nested

    assert kvm_nested(healthy_node(), AUTO).status == "skip"
    assert kvm_nested(healthy_node(), NESTED).message == "nested virtualisation is on"
    off = kvm_nested(healthy_node(**{"kvm.nested_intel": {"path": "", "text": "N\n"}}), NESTED)
    assert (off.status, off.message) == ("warn", "kvm_intel is loaded with nested virtualisation off")
    assert off.remedy == ("/etc/modprobe.d/provision-kvm.conf (written by apply) takes effect when kvm_intel is "
                          "reloaded with no guest running (modprobe -r kvm_intel && modprobe kvm_intel), or at the next reboot")
    none = kvm_nested(healthy_node(**{"kvm.nested_intel": ENOENT}), NESTED)
    assert none.message == "neither kvm_intel nor kvm_amd is loaded: nested virtualisation cannot be on"


def test_nested_renders_the_modprobe_option_that_modprobe_reads(tmp_path):
    import subprocess

    import yaml

    from provision.inventory.select import select_nodes
    from provision.plugins import default_hooks
    from provision.stages.render import render_node

    def rendered(settings):
        inventory = tmp_path / "hosts.yml"
        inventory.write_text(yaml.safe_dump({"all": {"hosts": {"n1": {"ansible_host": "192.0.2.9", "provision": settings}}}}))
        hooks = default_hooks()
        node, = select_nodes(inventory=str(inventory), hooks=hooks).nodes
        return {f.target: f.content for f in render_node(node, None, hooks=hooks)}

    text = rendered({"virt_type": "qemu", "hypervisor": {"nested": True}})["/etc/modprobe.d/provision-kvm.conf"]
    assert text.splitlines()[1:] == ["options kvm_intel nested=1", "options kvm_amd nested=1"]
    assert "/etc/modprobe.d/provision-kvm.conf" not in rendered({"virt_type": "qemu"})
    # the real reader: modprobe's own configuration parser, given only this file
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "provision-kvm.conf").write_text(text)
    shown = subprocess.run(["modprobe", "-C", str(tmp_path / "conf"), "--showconfig"], capture_output=True, text=True)
    assert "options kvm_intel nested=1" in shown.stdout and "options kvm_amd nested=1" in shown.stdout
