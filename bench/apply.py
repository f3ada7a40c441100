"""Benchmark: provision apply on one node, beside virsh doing the same by hand.

    .venv/bin/python bench/apply.py [--runs 5]

The node is this machine seen from a private network and mount namespace with its own libvirtd and
overlays over /etc, /var/lib and /var/cache (tests/applynode.py), so nothing of this machine changes.
Medians of repeated runs, in one sitting:

- a no-op apply of the converged node (plan every object and file, change nothing, verify), beside
  `virsh net-list`, `pool-list` and `secret-list` run once each (target: under 1 s);
- a first apply of a node with a NAT network and an iscsi-direct pool with its CHAP secret (tgtd in the
  node serves the LUN), beside a shell script that defines, starts and autostarts the same objects and
  sets the secret with virsh (each run on a node where they are not defined yet);
- a no-op apply of a fleet (--hosts, 32 by default) of namespace hosts over SSH, each with its own
  mount namespace and overlays (files only: they run no libvirtd, so the gate's libvirt.daemon is
  ignored), beside plain parallel `ssh host true` (target: within 1.3x: each node's probe, agent and
  verification are requests to one session over one SSH connection).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from render import cpu_reference  # noqa: E402

from tests.applynode import OverlayNode  # noqa: E402

NAT = {"name": "benchnat", "bridge": "virbr7", "subnet": "192.168.177.0/24", "gateway": "192.168.177.1",
       "dhcp": {"start": "192.168.177.20", "end": "192.168.177.200"}}
TARGET = "iqn.2026-01.com.example:san1"
PASSWORD = "chap-secret-0123"
SAN = {"name": "san1", "type": "iscsi", "direct": True, "portal": "127.0.0.1:3260", "target": TARGET,
       "initiator": "iqn.2026-01.com.example:node1", "chap": {"username": "provision", "password_file": "/etc/provision/chap"}}
TGTD = f"""tgtd && sleep 0.5 &&
    tgtadm --lld iscsi --op new --mode target --tid 1 -T {TARGET} &&
    tgtadm --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$1" &&
    tgtadm --lld iscsi --op bind --mode target --tid 1 -I ALL &&
    tgtadm --lld iscsi --op new --mode account --user provision --password {PASSWORD} &&
    tgtadm --lld iscsi --op bind --mode account --tid 1 --user provision"""
BY_HAND = ("virsh -q net-define {work}/net.xml && virsh -q net-start benchnat && virsh -q net-autostart benchnat && "
           "virsh -q secret-define {work}/secret.xml && "
           "virsh -q secret-set-value $(virsh -q secret-list | awk '{{print $1}}') --file /etc/provision/chap --plain && "
           "virsh -q pool-define {work}/pool.xml && virsh -q pool-start san1 && virsh -q pool-autostart san1")


def san_node(base: Path) -> OverlayNode:
    """A node with tgtd serving one LUN with CHAP, and the CHAP password file."""
    node = OverlayNode(base)
    lun = base / "lun1.img"
    with open(lun, "wb") as fh:
        fh.truncate(64 << 20)
    node.sh(TGTD, str(lun))
    node.write("/etc/provision/chap", PASSWORD)
    return node


def timed(node: OverlayNode, *argv: str) -> float:
    start = time.perf_counter()
    result = node.run(*argv)
    elapsed = time.perf_counter() - start
    if result.returncode:
        raise SystemExit(f"{' '.join(argv)}: {result.stdout}{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--hosts", type=int, default=32, help="fleet size for the no-op fleet apply (0: skip it)")
    args = parser.parse_args()
    print(f"CPU reference (a 2,000,000-step Python loop): {cpu_reference():.3f} s; the figures below scale with it")
    work = Path(tempfile.mkdtemp(prefix="provision-bench-apply-"))
    provision = str(Path(sys.executable).with_name("provision"))
    inv = work / "site.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"n1": {"ansible_connection": "local"}}, "vars": {"provision": {
        "virt_type": "qemu", "network": {"nat": [NAT]}, "storage": [SAN]}}}}))
    nodes = []
    try:
        firsts, by_hand = [], []
        for run in range(args.runs):
            node = san_node(work / f"first{run}")
            nodes.append(node)
            firsts.append(timed(node, provision, "apply", "-i", str(inv), "--ignore", "storage.iscsi"))
            if run == 0:
                (work / "net.xml").write_text(node.virsh("net-dumpxml", "benchnat").stdout)
                (work / "pool.xml").write_text(node.virsh("pool-dumpxml", "--inactive", "san1").stdout)
                (work / "secret.xml").write_text(node.virsh("secret-dumpxml", node.run(
                    "virsh", "-q", "secret-list").stdout.split()[0]).stdout)
                converged = node
            other = san_node(work / f"hand{run}")
            nodes.append(other)
            by_hand.append(timed(other, "sh", "-c", BY_HAND.format(work=work)))
        noops = [timed(converged, provision, "apply", "-i", str(inv), "--ignore", "storage.iscsi") for _ in range(args.runs)]
        lists = [timed(converged, "sh", "-c", "virsh -q net-list; virsh -q pool-list; virsh -q secret-list")
                 for _ in range(args.runs)]
        a, b = statistics.median(noops), statistics.median(lists)
        c, d = statistics.median(firsts), statistics.median(by_hand)
        print(f"no-op apply of a converged node  median {a:.3f} s; runs {', '.join(f'{t:.2f}' for t in noops)}\n"
              f"  virsh net-list, pool-list, secret-list  median {b:.3f} s; ratio {a / b:.1f}; "
              f"target < 1 s: {'met' if a < 1 else 'NOT met'}\n"
              f"first apply (NAT network, iscsi-direct pool with its CHAP secret, files)  median {c:.3f} s; "
              f"runs {', '.join(f'{t:.2f}' for t in firsts)}\n"
              f"  the same objects by hand with virsh  median {d:.3f} s; ratio {c / d:.1f}")
        if args.hosts:
            fleet(work, provision, args.hosts, args.runs)
    finally:
        for node in nodes:
            node.stop()
        shutil.rmtree(work, ignore_errors=True)


def fleet(work: Path, provision: str, hosts: int, runs: int) -> None:
    from fleet import plain_ssh
    from fleet import timed as timed_argv

    from tests.testhosts import HostNetwork

    nodes = []
    with HostNetwork() as net:
        try:
            for i in range(hosts):
                node = OverlayNode(work / f"fleet{i}", libvirt=False)
                nodes.append(node)
                net.add_node(f"n{i:02d}", node)
            data = net.inventory_data()
            data["all"]["vars"]["provision"] = {"virt_type": "qemu"}
            inv = net.write_inventory(data)
            argv = net.client_argv(provision, "apply", "-i", str(inv), "--forks", str(hosts), "--ignore", "libvirt.daemon")
            first = subprocess.run(argv, capture_output=True, text=True)
            if first.returncode:
                raise SystemExit(f"the first fleet apply failed: {first.stdout[-2000:]}{first.stderr[-2000:]}")
            noops = [timed_argv(argv) for _ in range(runs)]
            ssh = [timed_argv(net.client_argv(*plain_ssh(net))) for _ in range(runs)]
        finally:
            for node in nodes:
                node.stop()
    a, b = statistics.median(noops), statistics.median(ssh)
    print(f"no-op apply of {hosts} namespace hosts over SSH  median {a:.3f} s; runs {', '.join(f'{t:.2f}' for t in noops)}\n"
          f"  plain parallel ssh host true  median {b:.3f} s; ratio {a / b:.2f}; target within 1.3x: "
          f"{'met' if a <= 1.3 * b else 'NOT met'}")


if __name__ == "__main__":
    main()
