"""provision apply of libvirt objects, against a real libvirtd in the node's own network and mount
namespace: NAT networks defined, started and set to autostart through virsh on the node; idempotence
(the running network and its dnsmasq are left alone); objects provision did not define are never
touched; removal; and a failing pool rolls back the secret and definitions of its run."""

from __future__ import annotations

import base64
import json

import pytest
import yaml


pytestmark = [pytest.mark.libvirt, pytest.mark.netns]
NAT = {"name": "guestnat", "bridge": "virbr7", "subnet": "192.168.177.0/24", "gateway": "192.168.177.1",
       "dhcp": {"start": "192.168.177.20", "end": "192.168.177.200"}}




def inventory(tmp_path, **provision) -> str:
    path = tmp_path / "site.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"n1": {"ansible_connection": "local"}},
                                            "vars": {"provision": {"hypervisor": {"virt_type": "qemu"}, **provision}}}}))
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
    assert check.returncode == 3 and steps(data, "network") == {"guestnat": ("update", "its definition differs")}
    assert "192.168.177.200" in node.virsh("net-dumpxml", "--inactive", "guestnat").stdout  # --check changed nothing

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
    check, data = apply(node, inv, "--check")
    assert check.returncode == 3
    assert steps(data, "secret")[uuid] == ("create", "not defined")
    result, data = apply(node, inv)
    assert result.returncode == 1
    pool = steps(data, "pool")["vms"]
    assert pool[0] == "failed" and "failed to connect to the RADOS monitor on: 127.0.0.1:1" in pool[1]
    assert steps(data, "secret")[uuid][0] == "rolled back" and steps(data, "network")["guestnat"][0] == "rolled back"
    assert node.virsh("secret-list").stdout.strip() == "" and node.virsh("pool-list", "--all").stdout.strip() == ""
    assert "guestnat" not in node.virsh("net-list", "--all", "--name").stdout.split()
    assert not node.path("/etc/ceph/ceph.conf").exists()  # the files were never written
    assert key not in result.stdout + result.stderr
