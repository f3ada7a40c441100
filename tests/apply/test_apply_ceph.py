"""An rbd pool applied against a real Ceph cluster (tests/cephcluster.py: Debian's ceph-mon, ceph-osd and
ceph-mgr in the node's own network namespace): the libvirt secret set from the key file, the pool
defined, started and refreshed against the cluster, nova's drop-in naming the same pool, user and
secret; a volume made through libvirt is Ceph's; a rotated key is an update of the secret."""

from __future__ import annotations

import configparser
import json
import shutil

import pytest
import yaml

from tests.apply.conftest import KEY_FILE
from tests.cephcluster import MON

pytestmark = [pytest.mark.libvirt, pytest.mark.netns, pytest.mark.ceph,
              pytest.mark.skipif(not shutil.which("ceph-mon"), reason="Debian's ceph-mon is not installed (setup.sh installs it)")]
SECRET = "2f5c1e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b"


def inventory(tmp_path, **rbd) -> str:
    pool = {"name": "vms", "type": "rbd", "pool": "vms", "monitors": [MON], "user": "nova", "secret_uuid": SECRET,
            "key_file": KEY_FILE, **rbd}
    path = tmp_path / "site.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"n1": {"ansible_connection": "local"}}, "vars": {"provision": {
        "virt_type": "qemu", "hypervisor": {"images_type": "rbd"}, "storage": [pool]}}}}))
    return str(path)


def apply(node, inv, *args):
    result = node.provision("apply", "-i", inv, "-o", "json", *args)
    assert result.stdout.startswith("{"), result.stdout + result.stderr
    return result, json.loads(result.stdout)["hosts"][0]


def by_kind(host, kind):
    return {s["target"]: s["action"] for s in host["steps"] if s["kind"] == kind}


def test_an_rbd_pool_meets_the_cluster_and_a_rotated_key_updates_the_secret(cluster, node, tmp_path):
    inv = inventory(tmp_path)
    key = node.path(KEY_FILE).read_text()
    result, host = apply(node, inv)
    assert result.returncode == 0, result.stdout + result.stderr
    assert by_kind(host, "pool") == {"vms": "create"} and by_kind(host, "secret") == {SECRET: "create"}
    info = node.virsh("pool-info", "vms").stdout
    assert "State:          running" in info and "Autostart:      yes" in info
    # the cluster's capacity: the memstore OSD's 1 GiB, as Ceph itself reports it
    assert "Capacity:       1.00 GiB" in info, info
    assert cluster.stats()["total_bytes"] == 1 << 30

    # nova's drop-in and libvirt's objects name the same pool, user and secret
    nova = configparser.ConfigParser()
    nova.read_string(node.path("/etc/nova/nova.conf.d/50-provision-libvirt.conf").read_text())
    assert (nova["libvirt"]["images_rbd_pool"], nova["libvirt"]["rbd_user"], nova["libvirt"]["rbd_secret_uuid"]) == (
        "vms", "nova", SECRET)
    pool_xml = node.virsh("pool-dumpxml", "vms").stdout
    assert "<name>vms</name>" in pool_xml and "username='nova'" in pool_xml and f"uuid='{SECRET}'" in pool_xml
    assert "running" in node.virsh("pool-info", "vms").stdout

    # a volume made through libvirt is an image in Ceph's pool
    assert node.virsh("vol-create-as", "vms", "canary-disk", "16M").returncode == 0
    assert "canary-disk" in cluster.rbd("ls", "vms").split()
    node.virsh("vol-delete", "--pool", "vms", "canary-disk")

    # the key is never printed, stored or rendered
    state = node.path("/var/lib/provision/state.json").read_text()
    for text in (result.stdout, result.stderr, state, node.path("/etc/ceph/ceph.conf").read_text()):
        assert key not in text

    again, host = apply(node, inv)
    assert again.returncode == 0 and {s["action"] for s in host["steps"]} == {"unchanged"}
    verify = node.provision("verify", "-i", inv)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # a rotated key: the old one stops working, the file gets the new one, apply updates the secret
    new = cluster.rotate_key("nova", "vms")
    node.write(KEY_FILE, new)
    assert node.virsh("pool-refresh", "vms").returncode != 0  # libvirt still holds the old key
    result, host = apply(node, inv)
    assert result.returncode == 0, result.stdout + result.stderr
    assert by_kind(host, "secret") == {SECRET: "update"}
    assert node.virsh("pool-refresh", "vms").returncode == 0
    assert new not in result.stdout + result.stderr


def reachable(node, inv) -> dict:
    result = node.provision("preflight", "-i", inv, "-o", "json")
    (check,) = [c for c in json.loads(result.stdout)["hosts"][0]["checks"] if c["id"] == "ceph.reachable"]
    return check


def test_preflight_reaches_the_monitors_and_authenticates_from_the_node(cluster, node, tmp_path):
    key = node.path(KEY_FILE).read_text()
    check = reachable(node, inventory(tmp_path))
    assert (check["status"], check["message"]) == ("pass", "pool vms: 1 monitor(s) answer and client.nova authenticates")
    assert check["evidence"]["monitor 127.0.0.1:6789"] == "answers"

    # a wrong key: ceph's own refusal is the evidence; the key (either) is never printed
    wrong = "AQBSdFRjAAAAABAAr5HtMUgn8pPDLpXvSPDWGQ=="
    node.write("/etc/ceph/wrong.key", wrong)
    result = node.provision("preflight", "-i", inventory(tmp_path, key_file="/etc/ceph/wrong.key"), "-o", "json")
    (check,) = [c for c in json.loads(result.stdout)["hosts"][0]["checks"] if c["id"] == "ceph.reachable"]
    assert check["status"] == "fail"
    assert check["message"].startswith("pool vms: client.nova does not authenticate with the key in /etc/ceph/wrong.key: ")
    assert "permission denied" in check["message"].lower() or "auth" in check["message"].lower(), check["message"]
    assert wrong not in result.stdout + result.stderr and key not in result.stdout + result.stderr

    check = reachable(node, inventory(tmp_path, key_file="/etc/ceph/missing.key"))
    assert check["status"] == "fail"
    assert check["message"].startswith("pool vms: the key file /etc/ceph/missing.key for client.nova is not on the node (")

    check = reachable(node, inventory(tmp_path, monitors=["127.0.0.1:1"]))
    assert (check["status"], check["message"]) == (
        "fail", "pool vms: no monitor answers from the node: 127.0.0.1:1 (Connection refused)")

    # apply refuses the node before any change, with that evidence
    result, host = apply(node, inventory(tmp_path, key_file="/etc/ceph/wrong.key"))
    assert result.returncode == 1
    assert host["error"].startswith("refused by preflight, nothing was changed: ceph.reachable: pool vms: client.nova "
                                    "does not authenticate")
    assert not node.path("/var/lib/provision/state.json").exists()
