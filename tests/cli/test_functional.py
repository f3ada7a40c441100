"""provision preflight --functional: the canary booted with QEMU itself, under KVM and then TCG, here,
without a usable /dev/kvm, and on a namespace host over SSH (the canary copied once, checked by sha256).

Each case asserts what this node shows, whichever it is: on a host with working VT-x/AMD-V the KVM boot
passes and the decision may be kvm; here (PVM) it hangs, TCG boots, and the decision is qemu."""

import hashlib
import json
import os
import subprocess

import pytest

from provision.guests.canary import find_canary
from tests.conftest import provision_bin
from tests.testhosts import HostNetwork

pytestmark = pytest.mark.slow


def checks_of(host: dict) -> dict[str, dict]:
    return {c["id"]: c for c in host["checks"]}


def assert_boots_agree_with_the_decision(host: dict) -> None:
    boot = checks_of(host)["kvm.boot"]
    reasons = host["decision"]["reasons"]
    if boot["status"] == "pass":  # a node whose KVM runs a stock kernel
        assert boot["message"].startswith("the canary booted under KVM in ")
        assert any(r.startswith("kvm.boot: the canary booted under KVM") for r in reasons)
        return
    assert boot["status"] == "warn", boot
    assert boot["message"].startswith("the canary did not boot under KVM (no marker on the console within 15s); "
                                      "under TCG it booted in "), boot
    assert boot["evidence"]["boot under kvm"].startswith("KVM: no boot (no marker on the console within 15s, 15.")
    assert boot["evidence"]["boot under tcg"].startswith("TCG: booted in ")
    assert host["decision"]["virt_type"] == "qemu"
    assert any(r.startswith("kvm.boot: the canary did not boot under KVM") for r in reasons)


@pytest.fixture(scope="module")
def canary(kvm_permissions):
    return find_canary()


def test_functional_preflight_on_this_node(cli, canary):
    result = cli("preflight", "--functional", "-o", "json")
    host = json.loads(result.stdout)["hosts"][0]
    checks = checks_of(host)
    if os.path.exists("/dev/kvm"):
        assert checks["kvm.run"]["status"] == "pass", checks["kvm.run"]
    assert_boots_agree_with_the_decision(host)
    plain = json.loads(cli("preflight", "-o", "json").stdout)["hosts"][0]
    assert checks_of(plain)["kvm.boot"]["message"] == ("not run: give provision preflight --functional "
                                                        "(provision smoke always runs it)")


@pytest.mark.skipif(not os.path.exists("/dev/kvm") or os.geteuid() != 0,
                    reason="needs root and a /dev/kvm to cover (without one, every test here runs that way)")
def test_without_a_usable_dev_kvm_only_tcg_is_tried(canary):
    script = 'mount --bind /dev/null /dev/kvm && exec "$@"'
    result = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", provision_bin(),
                             "preflight", "--functional", "-o", "json"], capture_output=True, text=True, timeout=120)
    host = json.loads(result.stdout)["hosts"][0]
    boot = checks_of(host)["kvm.boot"]
    assert boot["status"] == "skip"
    assert boot["message"].startswith("not run under KVM: /dev/kvm does not answer the KVM API: ENOTTY")
    assert " under TCG it booted in " in boot["message"]
    assert checks_of(host)["kvm.run"]["status"] == "skip"
    assert host["decision"]["virt_type"] == "qemu"


@pytest.mark.netns
def test_functional_preflight_over_ssh_copies_the_canary_once(canary):
    sums = {name: hashlib.sha256(path.read_bytes()).hexdigest()
            for name, path in (("vmlinuz", canary.kernel), ("initrd.gz", canary.initrd))}
    with HostNetwork("pfn", subnet="10.219.0") as net:
        address = net.add_sshd_host("node1", tmpfs=("/var/cache/provision",))  # the node's own cache
        inv = net.write_inventory()

        def on_node(script: str) -> str:
            argv = net.client_argv("ssh", "-i", str(net.key), *net.ssh_args().split(), f"root@{address}", script)
            return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout

        def preflight() -> dict:
            proc = subprocess.run(net.client_argv(provision_bin(), "preflight", "-i", str(inv), "--functional", "-o", "json"),
                                  capture_output=True, text=True, timeout=120)
            return json.loads(proc.stdout)["hosts"][0]

        first = preflight()
        assert first["reachable"], first
        if os.path.exists("/dev/kvm"):  # the node shares this machine's /dev/kvm
            assert checks_of(first)["kvm.run"]["status"] == "pass", checks_of(first)["kvm.run"]
        assert_boots_agree_with_the_decision(first)
        folders = on_node("ls /var/cache/provision/canary").split()
        assert len(folders) == 1 and len(folders[0]) == 16, folders
        folder = f"/var/cache/provision/canary/{folders[0]}"
        listed = on_node(f"cd {folder} && sha256sum vmlinuz initrd.gz && ls -A && stat -c %Y.%y vmlinuz")
        lines = listed.splitlines()
        assert {ln.split()[1]: ln.split()[0] for ln in lines[:2]} == sums
        assert lines[2:4] == ["initrd.gz", "vmlinuz"]  # no part file left
        copied_at = lines[4]
        # a damaged copy is replaced on the next run; the intact one is left as it is
        on_node(f"echo damaged > {folder}/initrd.gz")
        second = preflight()
        assert_boots_agree_with_the_decision(second)
        again = on_node(f"cd {folder} && sha256sum initrd.gz && stat -c %Y.%y vmlinuz").splitlines()
        assert again[0].split()[0] == sums["initrd.gz"]
        assert again[1] == copied_at
