"""Benchmark: `provision render` of a generated 1,000-host inventory with every storage and network kind.

    .venv/bin/python bench/render.py [--hosts 1000] [--runs 5]

Prints the median wall time over repeated runs, writing the tree to the disk (a folder under
.cache/) and, where there is one, to tmpfs (/dev/shm), so the filesystem's share shows.
Target: under 2 s.
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

PROVISION = str(Path(sys.executable).with_name("provision"))
ROOT = Path(__file__).resolve().parent.parent


def inventory(hosts: int) -> dict:
    compute = yaml.safe_load((ROOT / "inventories" / "example" / "group_vars" / "compute.yml").read_text())
    compute["provision"]["storage"][1]["devices"] = ["/dev/sdb", "/dev/sdc"]
    members = {f"cmp{i:04d}": {"ansible_host": f"10.{i // 250}.{i % 250}.10", "provision": {"network": {"bridges": [
        {"name": "br-provider", "interfaces": ["eth1"], "addresses": [f"198.51.{i // 250}.{i % 250 + 1}/16"], "mtu": 9000},
        {"name": "br-tenant"}]}}} for i in range(hosts)}
    for i, host in enumerate(members.values()):
        if i % 2:
            host["provision"]["network"]["renderer"] = "networkd"
    nat = compute["provision"]["network"]["nat"][0]
    compute["provision"]["network"]["nat"].append({**nat, "name": "nftnat", "bridge": "virbr8", "subnet": "192.168.178.0/24",
                                                   "gateway": "192.168.178.1", "dhcp": None, "firewall": "nftables"})
    compute["provision"]["storage"].append({**compute["provision"]["storage"][2], "name": "san2", "direct": True})
    return {"all": {"vars": {"ansible_user": "ops"}, "children": {"compute": {"hosts": members, "vars": compute}}}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    (ROOT / ".cache").mkdir(exist_ok=True)
    places = [("disk", ROOT / ".cache")] + ([("tmpfs", Path("/dev/shm"))] if Path("/dev/shm").is_dir() else [])
    for label, base in places:
        work = Path(tempfile.mkdtemp(prefix="provision-bench-render-", dir=base))
        try:
            inv = work / "site.yml"
            inv.write_text(yaml.safe_dump(inventory(args.hosts), sort_keys=False))
            times, files = [], 0
            for run in range(args.runs):
                out = work / f"out{run}"
                # start each run with no dirty pages of an earlier one pending: this VM's disk is
                # rate-limited, and a run must not pay for another run's writes
                subprocess.run(["sync"])
                start = time.perf_counter()
                proc = subprocess.run([PROVISION, "render", "-i", str(inv), "--out", str(out)], capture_output=True, text=True)
                times.append(time.perf_counter() - start)
                if proc.returncode:
                    raise SystemExit(proc.stderr)
                files = sum(1 for p in out.rglob("*") if p.is_file())
            median = statistics.median(times)
            print(f"provision render to {label} ({base}): {args.hosts} hosts, {files} files, median {median:.2f} s over "
                  f"{args.runs} runs ({median / args.hosts * 1000:.2f} ms per host); "
                  f"target < 2 s: {'met' if median < 2 else 'NOT met'}; runs: {', '.join(f'{t:.2f}' for t in times)}")
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
