"""provision smoke: a canary boot on the local node and on a node reached over SSH, nothing left behind."""

import json
import subprocess
from pathlib import Path

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
    ended left once that lease has passed (its pool of the canary's files, its volume in a node's pool),
    and leaves alone a run still within its lease, a name provision did not make, and anything named
    alike that has not the shape smoke gives it (a pool elsewhere, a volume of another size)."""
    import shutil
    import time

    from provision_plugins.libvirt_guests.backend import LibvirtBackend
    from provision_plugins.libvirt_guests.canary import IMAGES, PREFIX

    stale, fresh, foreign = f"{PREFIX}00000001-deadbeef", f"{PREFIX}{int(time.time()) + 3600:x}-cafef00d", f"{PREFIX}mine"
    lookalike, user_pool = f"{PREFIX}00000002-deadbeef", "pvtest-sweep"
    places = {stale: f"{IMAGES}/{stale}", fresh: f"{IMAGES}/{fresh}", foreign: str(tmp_path / foreign),
              lookalike: str(tmp_path / lookalike), user_pool: str(tmp_path / user_pool)}
    try:
        for name, place in places.items():
            assert virsh("pool-define-as", name, "dir", "--target", place).returncode == 0
            virsh("pool-build", name, check=True)
            virsh("pool-start", name, check=True)
        virsh("vol-create-as", stale, "kernel-canary", "1M", check=True)
        virsh("vol-create-as", user_pool, stale, "16M", check=True)  # smoke's scratch volume
        virsh("vol-create-as", user_pool, lookalike, "1M", check=True)  # named alike, another size
        virsh("vol-create-as", user_pool, fresh, "16M", check=True)
        backend = LibvirtBackend("qemu:///system")
        try:
            removed = backend.sweep() + backend.sweep_volumes(backend.conn.storagePoolLookupByName(user_pool))
        finally:
            backend.close()
        assert sorted(removed) == [stale, f"{user_pool}/{stale}"]
        pools = virsh("pool-list", "--all", "--name").stdout.split()
        assert stale not in pools and {fresh, foreign, lookalike, user_pool} <= set(pools)
        assert not Path(places[stale]).exists()
        assert sorted(virsh("vol-list", user_pool).stdout.split()[::2]) == sorted([fresh, lookalike])
    finally:
        for name, place in places.items():
            virsh("pool-destroy", name)
            virsh("pool-delete", name)
            virsh("pool-undefine", name)
            if place.startswith(IMAGES):
                shutil.rmtree(place, ignore_errors=True)


def test_what_a_killed_run_left_and_cannot_be_removed_is_named(libvirtd):
    """The sweep never hides a failure: a lapsed canary pool whose file cannot be deleted (immutable here)
    stops the smoke with its name and libvirt's reason."""
    import shutil

    from provision.guests import GuestError
    from provision_plugins.libvirt_guests.backend import LibvirtBackend
    from provision_plugins.libvirt_guests.canary import IMAGES, PREFIX

    stale = f"{PREFIX}00000003-deadbeef"
    place = Path(IMAGES) / stale
    try:
        virsh("pool-define-as", stale, "dir", "--target", str(place), check=True)
        virsh("pool-build", stale, check=True)
        virsh("pool-start", stale, check=True)
        virsh("vol-create-as", stale, "initrd-canary", "1M", check=True)
        subprocess.run(["chattr", "+i", str(place / "initrd-canary")], check=True)
        backend = LibvirtBackend("qemu:///system")
        try:
            with pytest.raises(GuestError, match=rf"^cannot remove {stale}, left by a smoke run that did not end: "
                                                 r".*[Oo]peration not permitted"):
                backend.sweep()
        finally:
            backend.close()
    finally:
        subprocess.run(["chattr", "-i", str(place / "initrd-canary")])
        for verb in ("pool-destroy", "pool-delete", "pool-undefine"):
            virsh(verb, stale)
        shutil.rmtree(place, ignore_errors=True)
