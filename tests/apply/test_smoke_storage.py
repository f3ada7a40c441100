"""provision smoke --storage: the canary boots once with a disk from every pool the inventory gives the
node (a real Ceph cluster's rbd pool, an iscsi-direct pool on Debian's tgtd, a logical pool), writes a
marker to each and reads it back; one check per pool with its time. This kernel has no device-mapper,
so the logical pool cannot give a disk: that check fails with the pool's own reason."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import yaml

from tests.apply.conftest import KEY_FILE
from tests.cephcluster import MON
from tests.conftest import ROOT

pytestmark = [pytest.mark.libvirt, pytest.mark.netns, pytest.mark.ceph, pytest.mark.slow,
              pytest.mark.skipif(not (shutil.which("ceph-mon") and shutil.which("tgtd")),
                                 reason="Debian's ceph-mon and tgt are not installed (setup.sh installs them)")]
TARGET = "iqn.2026-12.com.example:smoke"
SECRET = "6a1f0c3e-9d2b-4c8e-a7f5-3b2d1e0f9a8c"


@pytest.fixture
def lun(node, tmp_path):
    """tgtd in the node with one 64 MiB LUN (a file here), no CHAP."""
    node.serve_lun(TARGET, tmp_path / "lun.img")
    return tmp_path / "lun.img"


def test_the_canary_writes_and_reads_a_marker_on_a_disk_from_every_pool(cluster, lun, loop, node, tmp_path):
    storage = [
        {"name": "vms", "type": "rbd", "pool": "vms", "monitors": [MON], "user": "nova", "secret_uuid": SECRET,
         "key_file": KEY_FILE},
        {"name": "san1", "type": "iscsi", "direct": True, "portal": "127.0.0.1:3260", "target": TARGET,
         "initiator": "iqn.2026-12.com.example:n1"},
        {"name": "pvsmoke-vg", "type": "lvm", "devices": [loop]},
        {"name": "local", "type": "dir", "path": "/var/lib/pvsmoke-local"},  # a third-party plugin's kind
    ]
    env = f"export PROVISION_PLUGINS=tests.fixture_plugins.dir_storage PYTHONPATH={ROOT}"
    inv = tmp_path / "site.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"n1": {"ansible_connection": "local"}}, "vars": {"provision": {
        "virt_type": "qemu", "storage": storage}}}}))
    node.sh("mkdir -p /var/lib/pvsmoke-local")  # the fixture plugin's pools are not built
    try:
        applied = node.provision("apply", "-i", str(inv), "--ignore", "kernel.device_mapper", before=env)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        before = hashlib.sha256(lun.read_bytes()).hexdigest()

        result = node.provision("smoke", "-i", str(inv), "--storage", "-o", "json", "--timeout", "90", before=env)
        checks = {c["id"]: c for c in json.loads(result.stdout)["hosts"][0]["checks"]}
        assert checks["smoke.boot"]["status"] == "pass", checks
        for pool in ("vms", "san1", "local"):
            check = checks[f"smoke.storage.{pool}"]
            assert check["status"] == "pass", check
            assert check["message"].startswith(f"the canary wrote a marker to a disk from pool {pool} and read it back in ")
            assert check["evidence"]["seconds"] >= 0
        lvm = checks["smoke.storage.pvsmoke-vg"]
        assert lvm["status"] == "fail" and lvm["message"].startswith("pool pvsmoke-vg: ")
        # libvirt's own words: lvcreate cannot reach device-mapper, which this kernel lacks
        assert "lvcreate" in lvm["message"] and "/dev/mapper/control: open failed: No such device" in lvm["message"]
        assert result.returncode == 1  # a pool failed

        # nothing is left: no guest, no volume in Ceph, the borrowed LUN as it was
        assert node.virsh("list", "--all", "--name").stdout.strip() == ""
        assert cluster.rbd("ls", "vms").split() == []
        assert hashlib.sha256(lun.read_bytes()).hexdigest() == before
    finally:
        node.run("vgremove", "-f", "pvsmoke-vg")
        node.run("pvremove", "-f", loop)
