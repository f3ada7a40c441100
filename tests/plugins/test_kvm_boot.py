"""kvm.boot on recorded canary boots: what the check and the decision make of each outcome."""

import pytest

from provision.guests.canary import NodeCanary, init_digest, on_node
from provision.remote.hosts import parse_host_spec
from provision_plugins.kvm import kvm_boot, provision_probe_functional, provision_virt_decision
from tests.nodes import healthy_node

AUTO = {"virt_type": "auto"}
KVM = {"virt_type": "kvm"}
QEMU = "/usr/bin/qemu-system-x86_64"
KVM_BOOTED = {"accel": "kvm", "ok": True, "seconds": 0.61, "console": "provision-canary: ready cpus=1 mem_kb=223632"}
KVM_HUNG = {"accel": "kvm", "ok": False, "seconds": 15.0, "why": "no marker on the console within 15s",
            "console": ["qemu-system-x86_64: warning: host doesn't support requested feature: CPUID.01H:ECX.pni [bit 0]"]}
TCG_BOOTED = {"accel": "tcg", "ok": True, "seconds": 2.52, "console": "provision-canary: ready cpus=1 mem_kb=223632"}
TCG_DIED = {"accel": "tcg", "ok": False, "seconds": 0.05, "why": "QEMU exited with 1 before the marker",
            "console": ["qemu-system-x86_64: -kernel /x: could not load kernel"]}


def boots(*runs):
    return healthy_node(**{"kvm.boot": {"qemu": QEMU, "runs": list(runs)}})


def test_a_kvm_boot_passes_and_the_decision_stays_kvm():
    facts = boots(KVM_BOOTED)
    result = kvm_boot(facts, AUTO)
    assert (result.status, result.message) == ("pass", "the canary booted under KVM in 0.61 s")
    assert result.evidence == {"boot under kvm": "KVM: booted in 0.61 s"}
    decision = provision_virt_decision(facts, AUTO)
    assert decision.virt_type == "kvm" and "kvm.boot: the canary booted under KVM in 0.61 s" in decision.reasons


def test_a_hung_kvm_boot_with_a_tcg_boot_warns_and_decides_qemu_despite_vmx():
    facts = boots(KVM_HUNG, TCG_BOOTED)
    result = kvm_boot(facts, AUTO)
    assert result.status == "warn"
    assert result.message == ("the canary did not boot under KVM (no marker on the console within 15s); under TCG it "
                              "booted in 2.52 s: guests run only under software emulation (virt_type qemu)")
    assert result.evidence["boot under kvm"] == "KVM: no boot (no marker on the console within 15s, 15.00 s)"
    assert result.evidence["boot under tcg"] == "TCG: booted in 2.52 s"
    assert "CPUID.01H:ECX.pni" in result.evidence["console under kvm"]
    decision = provision_virt_decision(facts, AUTO)  # the CPU shows vmx, /dev/kvm answers, the vCPU ran
    assert decision.virt_type == "qemu"
    assert any(r.startswith("kvm.boot: the canary did not boot under KVM") for r in decision.reasons)


def test_a_hung_kvm_boot_fails_a_pinned_kvm():
    result = kvm_boot(boots(KVM_HUNG, TCG_BOOTED), KVM)
    assert result.status == "fail" and result.message.endswith("; the inventory pins virt_type kvm")


def test_no_boot_under_either_fails_whatever_the_virt_type():
    result = kvm_boot(boots(KVM_HUNG, TCG_DIED), AUTO)
    assert result.status == "fail"
    assert result.message == ("the canary did not boot under KVM (no marker on the console within 15s); under TCG it did "
                              "not boot either (QEMU exited with 1 before the marker): this node cannot run guests at all")
    assert result.evidence["console under tcg"] == "qemu-system-x86_64: -kernel /x: could not load kernel"


def test_kvm_not_tried_where_dev_kvm_is_unusable():
    facts = boots({"accel": "kvm", "skipped": "/dev/kvm does not answer the KVM API: ENOTTY: Inappropriate ioctl for device"},
                  TCG_BOOTED)
    result = kvm_boot(facts, AUTO)
    assert result.status == "skip"
    assert result.message == ("not run under KVM: /dev/kvm does not answer the KVM API: ENOTTY: Inappropriate ioctl for "
                              "device; under TCG it booted in 2.52 s")
    assert provision_virt_decision(facts, AUTO).virt_type == "kvm"  # a skip is no evidence either way


@pytest.mark.parametrize(("answer", "message"), [
    (None, "not run: give provision preflight --functional (provision smoke always runs it)"),
    ({"skipped": "no canary guest in /x/canary: build it with `provision canary build`"},
     "not run: no canary guest in /x/canary: build it with `provision canary build`"),
    ({"error": "ENOENT: qemu-system-x86_64 is not installed"}, "no canary boot: ENOENT: qemu-system-x86_64 is not installed"),
])
def test_not_run(answer, message):
    facts = healthy_node() if answer is None else healthy_node(**{"kvm.boot": answer})
    result = kvm_boot(facts, AUTO)
    assert (result.status, result.message) == ("skip", message)


def test_the_operation_carries_the_canary_and_its_limits():
    canary = NodeCanary("/var/cache/provision/canary/0123456789abcdef/vmlinuz",
                        "/var/cache/provision/canary/0123456789abcdef/initrd.gz", timeout=7)
    op = provision_probe_functional(canary)["kvm.boot"]
    assert op["op"] == "canary_boot" and op["accels"] == [["kvm", 7], ["tcg", 7]]
    assert (op["kernel"], op["initrd"], op["unavailable"]) == (canary.kernel, canary.initrd, None)


def test_the_canary_goes_to_local_and_ssh_nodes_only(tmp_path, monkeypatch):
    monkeypatch.setenv("PROVISION_CACHE", str(tmp_path))
    (tmp_path / "canary").mkdir()
    for name in ("vmlinuz", "initrd.gz"):
        (tmp_path / "canary" / name).write_bytes(b"canary")
    (tmp_path / "canary" / "INIT.sha256").write_text(init_digest())  # built from this init
    canary = on_node(parse_host_spec("docker://compute1"), timeout=5)
    assert (canary.unavailable, canary.kernel) == ("the canary is sent to local and ssh:// nodes only, not over docker://", "")
    local = on_node(parse_host_spec("local://"), timeout=5, boot_timeout=9)
    assert (local.kernel, local.timeout, local.unavailable) == (str(tmp_path / "canary" / "vmlinuz"), 9, None)


def test_without_a_built_canary_it_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("PROVISION_CACHE", str(tmp_path))
    canary = on_node(parse_host_spec("local://"), timeout=5)
    assert canary.unavailable == f"no canary guest in {tmp_path}/canary: build it with `provision canary build`"
