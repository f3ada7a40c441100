"""provision smoke: a canary boot on the local node and on a node reached over SSH, nothing left behind."""

import json
import subprocess

import pytest

from provision.guests.canary import MARKER
from tests.conftest import provision_bin
from tests.guests import virsh
from tests.testhosts import HostNetwork

pytestmark = [pytest.mark.libvirt, pytest.mark.slow]


def leftovers() -> list[str]:
    pools = virsh("pool-list", "--all", "--name").stdout.split()
    doms = virsh("list", "--all", "--name").stdout.split()
    return [n for n in pools + doms if n.startswith("provision-smoke-")]


def test_smoke_on_the_local_node(cli, libvirtd):
    result = cli("smoke", "-o", "json")
    data = json.loads(result.stdout)
    (host,) = data["hosts"]
    (check,) = host["checks"]
    assert check["id"] == "smoke.boot" and check["status"] == "pass", check
    assert 0 < check["evidence"]["boot_seconds"] < 60
    assert MARKER in check["evidence"]["console"]
    assert host["decision"]["virt_type"] == json.loads(cli("preflight", "-o", "json").stdout)["hosts"][0]["decision"]["virt_type"]
    # the decision behind the libvirt boot took QEMU's own boots into account (kvm.boot)
    assert any(r.startswith("kvm.boot: the canary ") for r in host["decision"]["reasons"]), host["decision"]
    assert result.exit_code == 0 and leftovers() == []


@pytest.mark.netns
def test_smoke_over_ssh_and_an_unreachable_node(libvirtd, tmp_path):
    with HostNetwork("pvs", subnet="10.216.0") as net:
        net.add_sshd_host("node1")
        net.add_refusing_host("dead1")
        inv = net.write_inventory()
        proc = subprocess.run(net.client_argv(provision_bin(), "smoke", "-i", str(inv), "-o", "json", "--timeout", "60"),
                              capture_output=True, text=True, timeout=180)
    subprocess.run(["ssh-keygen", "-R", "10.216.0.10"], capture_output=True)  # libvirt's ssh remembered the test host
    data = json.loads(proc.stdout)
    hosts = {h["host"]: h for h in data["hosts"]}
    check = hosts["node1"]["checks"][0]
    assert check["status"] == "pass", check
    assert check["evidence"]["uri"].startswith("qemu+ssh://root@10.216.0.10/system?keyfile=")
    assert hosts["dead1"]["reachable"] is False and "Connection refused" in hosts["dead1"]["error"]
    assert proc.returncode == 1 and leftovers() == []


def test_smoke_without_a_canary_says_how_to_build_one(cli, tmp_path):
    result = cli("smoke", env={"PROVISION_CACHE": str(tmp_path)})
    assert result.exit_code == 2
    assert f"no canary guest in {tmp_path}/canary: build it with `provision canary build`" in result.stderr


def test_smoke_refuses_kvm_pinned_on_a_node_that_decided_qemu(cli, libvirtd, tmp_path):
    decided = json.loads(cli("preflight", "-o", "json").stdout)["hosts"][0]["decision"]["virt_type"]
    if decided == "kvm":
        pytest.skip("this node can run KVM")
    inv = tmp_path / "site.yml"
    inv.write_text("all:\n  hosts:\n    n1: {ansible_connection: local, provision: {virt_type: kvm}}\n")
    result = cli("smoke", "-i", str(inv), "-o", "json")
    (check,) = json.loads(result.stdout)["hosts"][0]["checks"]
    assert check["status"] == "fail" and "virt_type kvm was asked for, but n1 decided qemu" in check["message"]
    assert result.exit_code == 1 and leftovers() == []


@pytest.mark.netns  # a test host in a namespace of its own
def test_guest_commands_over_ssh_with_connect(libvirtd, tmp_path):
    from provision.guests.canary import find_canary
    from tests.guests import remove_test_guests

    canary = find_canary()
    with HostNetwork("pvr", subnet="10.217.0") as net:
        address = net.add_sshd_host("node1")
        uri = f"qemu+ssh://root@{address}/system?keyfile={net.key}&no_verify=1"
        run = lambda *args: subprocess.run(net.client_argv(provision_bin(), "guest", *args, "--connect", uri),  # noqa: E731
                                           capture_output=True, text=True, timeout=120)
        try:
            created = run("create", "pvtest-remote", "--kernel", str(canary.kernel), "--initrd", str(canary.initrd),
                          "--cmdline", canary.cmdline)
            assert created.returncode == 0, created.stderr
            assert virsh("domstate", "pvtest-remote").stdout.strip() == "running"  # the node's libvirtd has it
            for _ in range(100):
                console = run("console", "pvtest-remote")  # the log file, read over SSH
                if MARKER in console.stdout:
                    break
            assert MARKER in console.stdout, console.stderr
            assert "pvtest-remote" in run("list").stdout
        finally:
            remove_test_guests()
    subprocess.run(["ssh-keygen", "-R", address], capture_output=True)
