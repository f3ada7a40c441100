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


def test_smoke_removes_what_a_killed_run_left_and_nothing_else(libvirtd, tmp_path):
    """What a smoke run makes carries its lease in its name: the next run removes what a run that never
    ended left once that lease has passed (its pool and the canary's files in it, its volume in a node's
    pool), and leaves a run still within its lease, and any name provision did not make, alone."""
    import time

    from provision_plugins.libvirt_guests.backend import LibvirtBackend
    from provision_plugins.libvirt_guests.canary import PREFIX

    stale, fresh, foreign = f"{PREFIX}00000001-deadbeef", f"{PREFIX}{int(time.time()) + 3600:x}-cafef00d", f"{PREFIX}mine"
    user_pool = "pvtest-sweep"
    made = [stale, fresh, foreign, user_pool]
    try:
        for name in made:
            assert virsh("pool-define-as", name, "dir", "--target", str(tmp_path / name)).returncode == 0
            virsh("pool-build", name, check=True)
            virsh("pool-start", name, check=True)
        virsh("vol-create-as", stale, "kernel-canary", "1M", check=True)
        for vol in (stale, fresh, "keep-me"):
            virsh("vol-create-as", user_pool, vol, "1M", check=True)
        backend = LibvirtBackend("qemu:///system")
        try:
            removed = backend.sweep([user_pool, "pvtest-no-such-pool"])
        finally:
            backend.close()
        assert sorted(removed) == [stale, f"{user_pool}/{stale}"]
        pools = virsh("pool-list", "--all", "--name").stdout.split()
        assert stale not in pools and {fresh, foreign, user_pool} <= set(pools)
        assert not (tmp_path / stale).exists()
        assert sorted(virsh("vol-list", user_pool).stdout.split()[::2]) == sorted([fresh, "keep-me"])
    finally:
        for name in made:
            virsh("pool-destroy", name)
            virsh("pool-delete", name)
            virsh("pool-undefine", name)
