"""Benchmark: the canary's boot to its marker with one disk from an RBD pool, and from an iscsi-direct pool,
beside the same canary with a local qcow2 disk (a dir pool), in one run.

    PROVISION_CACHE=... .venv/bin/python bench/storage_smoke.py [--runs 5]

The node is this machine seen from a private network and mount namespace with its own libvirtd
(tests/applynode.py); a real Ceph cluster (tests/cephcluster.py) and Debian's tgtd run inside it. Each
run is ``provision smoke --storage`` of an inventory with that one pool; the figure is the storage boot
(``boot_seconds``: the domain created to the marker, after the canary wrote and read back its disk's
marker) and the marker's own round trip (``seconds``). Medians; the ratios are against the local disk.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.applynode import OverlayNode  # noqa: E402
from tests.cephcluster import MON, CephCluster, wait_healthy  # noqa: E402

TARGET = "iqn.2026-12.com.example:bench"
POOLS = {
    "local": {"name": "local", "type": "dir", "path": "/var/lib/bench-local"},
    "rbd": {"name": "vms", "type": "rbd", "pool": "vms", "monitors": [MON], "user": "nova",
            "secret_uuid": "0b7d3c1e-5a2f-4e6d-9c8b-7a6f5e4d3c2b", "key_file": "/etc/ceph/client.nova.key"},
    "iscsi-direct": {"name": "san1", "type": "iscsi", "direct": True, "portal": "127.0.0.1:3260", "target": TARGET,
                     "initiator": "iqn.2026-12.com.example:bench"},
}
ENV = f"export PROVISION_PLUGINS=tests.fixture_plugins.dir_storage PYTHONPATH={ROOT}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    node = OverlayNode(work / "node")
    boots: dict[str, list[float]] = {k: [] for k in POOLS}
    markers: dict[str, list[float]] = {k: [] for k in POOLS}
    try:
        subprocess.run(["chgrp", "kvm", "/dev/kvm"], check=False)
        ceph = CephCluster(work / "ceph", node.run)
        ceph.create_pool("vms")
        wait_healthy(ceph)
        node.write("/etc/ceph/client.nova.key", ceph.client_key("nova", "vms"))
        node.serve_lun(TARGET, work / "lun.img")
        node.sh("mkdir -p /var/lib/bench-local")
        def inventory(name: str, pools: list) -> Path:
            path = work / f"{name}.yml"
            path.write_text(yaml.safe_dump({"all": {"hosts": {"n1": {"ansible_connection": "local"}}, "vars": {
                "provision": {"virt_type": "qemu", "storage": pools}}}}))
            return path

        done = node.provision("apply", "-i", str(inventory("all", list(POOLS.values()))), before=ENV)
        if done.returncode:
            raise SystemExit(f"apply of the pools failed: {done.stdout[-800:]} {done.stderr[-800:]}")
        # each smoke is given one pool (an inventory of its own; smoke changes no configuration)
        inventories = {kind: inventory(kind, [pool]) for kind, pool in POOLS.items()}
        for _ in range(args.runs):
            for kind, inv in inventories.items():  # interleaved: the same conditions for each kind
                done = node.provision("smoke", "-i", str(inv), "--storage", "-o", "json", before=ENV)
                checks = [c for c in json.loads(done.stdout)["hosts"][0]["checks"] if c["id"].startswith("smoke.storage.")]
                if not checks or checks[0]["status"] != "pass":
                    raise SystemExit(f"smoke --storage of the {kind} pool failed: {checks or done.stdout[-1500:] + done.stderr[-1500:]}")
                boots[kind].append(checks[0]["evidence"]["boot_seconds"])
                markers[kind].append(checks[0]["evidence"]["seconds"])
    finally:
        node.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)
    local = statistics.median(boots["local"])
    for kind in POOLS:
        boot, marker = statistics.median(boots[kind]), statistics.median(markers[kind])
        print(f"{kind:<13} boot to marker median {boot:.2f} s, marker round trip median {marker * 1000:.0f} ms "
              f"over {len(boots[kind])} runs; ratio to the local qcow2 disk {boot / local:.2f}")


if __name__ == "__main__":
    main()
