"""provision apply of libvirt objects, against a real libvirtd in the node's own network and mount
namespace: NAT networks defined, started and set to autostart through virsh on the node; idempotence
(the running network and its dnsmasq are left alone); objects provision did not define are never
touched; removal; and a failing pool rolls back the secret and definitions of its run."""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from tests.conftest import provision_bin

pytestmark = [pytest.mark.libvirt, pytest.mark.netns]
NAT = {"name": "guestnat", "bridge": "virbr7", "subnet": "192.168.177.0/24", "gateway": "192.168.177.1",
       "dhcp": {"start": "192.168.177.20", "end": "192.168.177.200"}}
# the plan for NAT with its DHCP range narrowed to .99, on a node where no guest runs
NARROWED = ("update", "its definition differs: network/ip/dhcp/range@end is 192.168.177.200, wants 192.168.177.99; "
                      "restarted (no running guest uses it)")




def inventory(tmp_path, **provision) -> str:
    path = tmp_path / "site.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"n1": {"ansible_connection": "local"}},
                                            "vars": {"provision": {"virt_type": "qemu", **provision}}}}))
    return str(path)


def apply(node, inv, *args):
    result = node.provision("apply", "-i", inv, "-o", "json", *args)
    return result, json.loads(result.stdout) if result.stdout.startswith("{") else None


def steps(data, kind):
    return {s["target"]: (s["action"], s["why"]) for s in data["hosts"][0]["steps"] if s["kind"] == kind}


def dnsmasq_pids(node) -> list[int]:
    return sorted(pid for pid in node.processes() if open(f"/proc/{pid}/comm").read().strip() == "dnsmasq")


def test_a_nat_network_is_defined_started_and_left_running(node, tmp_path):
    inv = inventory(tmp_path, network={"nat": [NAT]})
    result, data = apply(node, inv)
    assert result.returncode == 0, result.stdout + result.stderr
    assert steps(data, "network") == {"guestnat": ("create", "not defined")}
    info = node.virsh("net-info", "guestnat").stdout
    assert "Active:         yes" in info and "Autostart:      yes" in info
    assert node.run("ip", "-4", "addr", "show", "virbr7").stdout.count("192.168.177.1/24") == 1
    pids = dnsmasq_pids(node)
    assert pids

    result, data = apply(node, inv)
    assert result.returncode == 0
    assert steps(data, "network") == {"guestnat": ("unchanged", "")}
    assert dnsmasq_pids(node) == pids  # not restarted

    check, data = apply(node, inventory(tmp_path, network={"nat": [{**NAT, "dhcp": {**NAT["dhcp"], "end": "192.168.177.99"}}]}),
                        "--check")
    assert check.returncode == 3
    assert steps(data, "network") == {"guestnat": NARROWED}
    assert "192.168.177.200" in node.virsh("net-dumpxml", "--inactive", "guestnat").stdout  # --check changed nothing
    # --diff: the fields provision sets, as they are (libvirt's UUID, MAC and defaults left out) against as rendered
    shown = node.provision("apply", "-i", inventory(tmp_path, network={"nat": [{**NAT, "dhcp": {**NAT["dhcp"], "end": "192.168.177.99"}}]}),
                           "--check", "--diff")
    assert shown.returncode == 3
    object_diff = shown.stdout[shown.stdout.index("--- a/n1:network:guestnat"):shown.stdout.index("\nn1: ")]
    assert object_diff.splitlines()[1] == "+++ b/n1:network:guestnat"
    assert [line for line in object_diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")] == [
        '-      <range start="192.168.177.20" end="192.168.177.200" />',
        '+      <range start="192.168.177.20" end="192.168.177.99" />']
    assert "<uuid>" not in object_diff and "<mac " not in object_diff

    verify = node.provision("verify", "-i", inventory(tmp_path, network={"nat": [{**NAT, "dhcp": {**NAT["dhcp"], "end": "192.168.177.99"}}]}))
    assert verify.returncode == 1 and "apply.network" in verify.stdout

    result, data = apply(node, inventory(tmp_path))
    assert result.returncode == 0, result.stdout
    assert steps(data, "network") == {"guestnat": ("remove", "no longer rendered (a pool's data is kept)")}
    assert node.virsh("net-info", "guestnat").returncode != 0
    assert not dnsmasq_pids(node)


def test_an_object_provision_did_not_define_is_never_touched(node, tmp_path):
    mine = tmp_path / "theirs.xml"
    mine.write_text("<network><name>guestnat</name><bridge name='virbr9'/></network>")
    assert node.virsh("net-define", str(mine)).returncode == 0
    result, data = apply(node, inventory(tmp_path, network={"nat": [NAT]}))
    assert result.returncode == 1
    assert steps(data, "network")["guestnat"] == (
        "failed", "a network of this name exists and provision did not define it; not touched")
    assert "refused before any change" in data["hosts"][0]["error"]
    assert "virbr9" in node.virsh("net-dumpxml", "guestnat").stdout
    assert not node.path("/etc/nova").exists()  # no file either


def test_a_pool_that_cannot_start_rolls_back_its_secret_and_definitions(node, tmp_path):
    """An rbd pool whose monitor refuses connections (no Ceph cluster runs here)."""
    key = base64.b64encode(b"sixteen byte key").decode()
    node.write("/etc/ceph/client.nova.key", key)
    uuid = "457eb676-33da-42ec-9a8c-9293d545c337"
    inv = inventory(tmp_path, storage=[{"name": "vms", "type": "rbd", "pool": "vms", "monitors": ["127.0.0.1:1"],
                                       "user": "nova", "secret_uuid": uuid, "key_file": "/etc/ceph/client.nova.key"}],
                    network={"nat": [NAT]})
    # setup.sh installs QEMU's and libvirt's rbd drivers, and the operator lets the node through
    # ceph.reachable (which finds the monitor silent), so libvirt's own rbd backend tries the monitor
    check, data = apply(node, inv, "--check", "--ignore", "ceph.reachable")
    assert check.returncode == 3
    assert steps(data, "secret")[uuid] == ("create", "not defined")
    result, data = apply(node, inv, "--ignore", "ceph.reachable")
    assert result.returncode == 1
    pool = steps(data, "pool")["vms"]
    assert pool[0] == "failed" and "failed to connect to the RADOS monitor on: 127.0.0.1:1" in pool[1]
    assert steps(data, "secret")[uuid][0] == "rolled back" and steps(data, "network")["guestnat"][0] == "rolled back"
    assert node.virsh("secret-list").stdout.strip() == "" and node.virsh("pool-list", "--all").stdout.strip() == ""
    assert "guestnat" not in node.virsh("net-list", "--all", "--name").stdout.split()
    assert not node.path("/etc/ceph/ceph.conf").exists()  # the files were never written
    assert key not in result.stdout + result.stderr


GUEST = """<domain type='qemu'><name>pvtest-guest</name><memory unit='MiB'>32</memory>
<os><type arch='x86_64'>hvm</type></os>
<devices><interface type='network'><source network='guestnat'/></interface></devices></domain>"""


def test_a_changed_network_is_restarted_unless_running_guests_use_it(node, tmp_path):
    assert apply(node, inventory(tmp_path, network={"nat": [NAT]}))[0].returncode == 0
    narrower = inventory(tmp_path, network={"nat": [{**NAT, "dhcp": {**NAT["dhcp"], "end": "192.168.177.99"}}]})
    before = dnsmasq_pids(node)
    result, data = apply(node, narrower)
    assert result.returncode == 0, result.stdout
    assert steps(data, "network")["guestnat"] == NARROWED
    assert dnsmasq_pids(node) != before and "192.168.177.99" in node.virsh("net-dumpxml", "guestnat").stdout

    (tmp_path / "guest.xml").write_text(GUEST)
    started = node.virsh("create", str(tmp_path / "guest.xml"))
    assert started.returncode == 0, started.stderr
    try:
        wider = inventory(tmp_path, network={"nat": [NAT]})
        result, data = apply(node, wider)
        assert result.returncode == 1
        action, why = steps(data, "network")["guestnat"]
        assert action == "failed" and "running guests use it (pvtest-guest): not redefined or restarted" in why
        assert "192.168.177.99" in node.virsh("net-dumpxml", "--inactive", "guestnat").stdout
        result, data = apply(node, wider, "--force")
        assert result.returncode == 0, result.stdout
        assert "redefined only: running guests (pvtest-guest) keep the running configuration" in \
            steps(data, "network")["guestnat"][1]
        assert "192.168.177.200" in node.virsh("net-dumpxml", "--inactive", "guestnat").stdout
        assert node.virsh("domstate", "pvtest-guest").stdout.strip() == "running"
    finally:
        node.virsh("destroy", "pvtest-guest")


def test_the_preflight_gate_refuses_a_node_the_plan_cannot_work_on(node, tmp_path):
    """This kernel has no NFS client: an NFS pool is refused before anything is changed."""
    inv = inventory(tmp_path, storage=[{"name": "instances", "type": "nfs", "server": "192.0.2.5", "export": "/srv/nova",
                                       "mountpoint": "/var/lib/nova/instances"}], network={"nat": [NAT]})
    result, data = apply(node, inv)
    assert result.returncode == 1
    error = data["hosts"][0]["error"]
    assert error.startswith("refused by preflight, nothing was changed: ") and "kernel.nfs: " in error
    assert data["hosts"][0]["steps"] == []
    assert not node.path("/var/lib/provision/state.json").exists()
    assert "guestnat" not in node.virsh("net-list", "--all", "--name").stdout

    # overriding the gate: the mount unit and pool are planned; libvirt cannot mount (no NFS client here),
    # so the pool's step fails with its reason and the run is undone, the mount unit included
    unit = "/etc/systemd/system/var-lib-nova-instances.mount"
    ignore = ("--ignore", "kernel.nfs", "--ignore", "storage.nfs")
    check, data = apply(node, inv, "--check", *ignore)
    assert check.returncode == 3, check.stdout + check.stderr
    assert steps(data, "file")[unit] == ("create", "absent") and steps(data, "pool")["instances"] == ("create", "not defined")
    result, data = apply(node, inv, *ignore)
    assert result.returncode == 1
    action, why = steps(data, "pool")["instances"]
    assert action == "failed" and "mount" in why.lower(), why
    assert steps(data, "network")["guestnat"][0] == "rolled back"
    assert not node.path(unit).exists() and node.virsh("pool-list", "--all", "--name").stdout.strip() == ""

    # a target folder that is a file: refused at plan time, nothing changed
    node.write("/var/lib/nova/instances", "not a folder")
    result, data = apply(node, inv, *ignore)
    assert result.returncode == 1
    assert steps(data, "pool")["instances"] == (
        "failed", "its target folder /var/lib/nova/instances exists and is a file; provision does not replace it")
    assert "refused before any change" in data["hosts"][0]["error"]
    assert node.path("/var/lib/nova/instances").read_text() == "not a folder"
    assert "guestnat" not in node.virsh("net-list", "--all", "--name").stdout


def test_a_key_file_missing_on_the_node_refuses_it(node, tmp_path):
    uuid = "457eb676-33da-42ec-9a8c-9293d545c337"
    inv = inventory(tmp_path, storage=[{"name": "vms", "type": "rbd", "pool": "vms", "monitors": ["127.0.0.1:1"],
                                       "user": "nova", "secret_uuid": uuid, "key_file": "/etc/ceph/absent.key"}])
    result, data = apply(node, inv)
    assert result.returncode == 1  # the gate sees it first (ceph.reachable), and past it the agent refuses too
    assert "ceph.reachable: pool vms: no monitor answers from the node" in data["hosts"][0]["error"]
    result, data = apply(node, inv, "--ignore", "ceph.reachable")
    assert result.returncode == 1
    assert steps(data, "secret")[uuid] == ("failed", "the value file /etc/ceph/absent.key is missing on the node")
    assert "refused before any change" in data["hosts"][0]["error"]
    assert node.virsh("secret-list").stdout.strip() == ""


def test_a_node_whose_libvirtd_is_down_is_refused_without_remedies_else_started(node, tmp_path):
    import os
    import signal
    import time

    from tests.applynode import cmdline

    pid = node.libvirtd
    os.kill(pid, signal.SIGKILL)  # gone, as after a crash
    # and any child it had forked (a capabilities probe is one, still named libvirtd) ends with it
    for _ in range(100):
        left = [p for p in node.processes() if cmdline(p).split(b"\0")[0].endswith(b"libvirtd")]
        if not left:
            break
        for other in left:
            try:
                os.kill(other, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    inv = inventory(tmp_path, network={"nat": [NAT]})
    result, data = apply(node, inv, "--no-remedies")
    assert result.returncode == 1
    error = data["hosts"][0]["error"]
    assert "libvirt.daemon: no libvirt daemon runs (apply would fix it, but remedies are off)" in error
    assert data["hosts"][0]["steps"] == []
    assert not node.path("/var/lib/provision/state.json").exists()
    # its remedy starts it (libvirtd -d: no systemd here), the node is probed again, and the apply goes on
    result, data = apply(node, inv)
    assert result.returncode == 0, result.stdout + result.stderr
    steps = {(s["kind"], s["target"]): s["action"] for s in data["hosts"][0]["steps"]}
    assert steps[("service", "libvirtd")] == "start" and steps[("network", NAT["name"])] == "create"
    assert node.run("pgrep", "-x", "libvirtd").returncode == 0


def test_an_unreachable_node_is_reported_and_the_others_go_on(node, tmp_path):
    inv = tmp_path / "two.yml"
    inv.write_text(yaml.safe_dump({"all": {
        "hosts": {"n1": {"ansible_connection": "local"}, "gone": {"ansible_host": "127.0.0.1", "ansible_port": 1}},
        "vars": {"provision": {"virt_type": "qemu", "network": {"nat": [NAT]}}}}}, sort_keys=False))
    result, data = apply(node, str(inv), "--timeout", "10")
    assert result.returncode == 1
    hosts = {h["host"]: h for h in data["hosts"]}
    assert hosts["gone"]["reachable"] is False and "Connection refused" in hosts["gone"]["error"]
    assert steps({"hosts": [hosts["n1"]]}, "network") == {"guestnat": ("create", "not defined")}
    assert [h["host"] for h in data["hosts"]] == ["n1", "gone"]  # the inventory's order


def test_an_undo_libvirt_refuses_is_reported_not_restored_and_retried_by_the_next_apply(node, tmp_path):
    """A virsh on the node's PATH refuses to define the network's old definition (while a flag file exists):
    the rollback says so with libvirt's message instead of claiming the network was restored."""
    wrapper, flag = tmp_path / "bin", tmp_path / "refuse"
    wrapper.mkdir()
    (wrapper / "virsh").write_text(
        "#!/bin/sh\n"
        f"if [ -e {flag} ]; then\n"
        '  for a; do last="$a"; done\n'
        '  case " $* " in *" net-define "*) if grep -q "192.168.177.200" "$last"; then\n'
        '    echo "error: operation failed: injected refusal of the old definition" >&2; exit 1; fi;; esac\n'
        "fi\n"
        'exec /usr/bin/virsh "$@"\n')
    (wrapper / "virsh").chmod(0o755)
    path = f"export PATH={wrapper}:$PATH"
    key = base64.b64encode(b"sixteen byte key").decode()
    node.write("/etc/ceph/client.nova.key", key)
    rbd = {"name": "vms", "type": "rbd", "pool": "vms", "monitors": ["127.0.0.1:1"], "user": "nova",
           "secret_uuid": "457eb676-33da-42ec-9a8c-9293d545c337", "key_file": "/etc/ceph/client.nova.key"}
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = inventory(tmp_path / "one", network={"nat": [NAT]})
    assert apply(node, first)[0].returncode == 0
    flag.touch()
    # the NAT range narrowed, and a pool that cannot start (no Ceph monitor answers): the run is undone
    second = inventory(tmp_path / "two", network={"nat": [{**NAT, "dhcp": {"start": "192.168.177.20", "end": "192.168.177.99"}}]},
                       storage=[rbd])
    result = node.run(provision_bin(), "apply", "-i", second, "-o", "json", "--ignore", "ceph.reachable", before=path)
    assert result.returncode == 1, result.stderr
    host = json.loads(result.stdout)["hosts"][0]
    assert host["not_restored"] == ["network:guestnat: operation failed: injected refusal of the old definition"]
    assert "not every change of this run could be undone: network:guestnat: operation failed: injected refusal" in host["error"]
    assert "the next apply tries again" in host["error"]
    assert steps({"hosts": [host]}, "pool")["vms"][0] == "failed"
    assert "192.168.177.99" in node.virsh("net-dumpxml", "guestnat").stdout  # honestly not restored
    assert node.virsh("pool-list", "--all").stdout.strip() == ""  # what could be undone was
    state = json.loads(node.path("/var/lib/provision/state.json").read_text())
    assert [o["key"] for o in state["pending"]["objects"]] == ["network:guestnat"]

    # while the refusal lasts, the next apply retries the undo, says so again and changes nothing else
    result = node.run(provision_bin(), "apply", "-i", first, "-o", "json", before=path)
    assert result.returncode == 1
    assert "could not be undone: network:guestnat: operation failed: injected refusal" in result.stdout, result.stdout[:600]

    flag.unlink()
    result, data = apply(node, first)
    assert result.returncode == 0, result.stderr
    assert data["hosts"][0]["recovered"] == ["network:guestnat"] and data["hosts"][0]["not_restored"] == []
    assert "192.168.177.200" in node.virsh("net-dumpxml", "guestnat").stdout
    assert "pending" not in json.loads(node.path("/var/lib/provision/state.json").read_text())
    assert node.provision("verify", "-i", first).returncode == 0
