"""Benchmark: provision apply from a bare node to a converged compute node, beside apt-get alone.

    .venv/bin/python bench/bootstrap.py [--runs 3]

Each run takes two fresh copies of the same bare Debian 12 root filesystem (tests/freshnode.py: own
mount, PID and network namespaces, own sshd and /dev, apt through the tests' caching proxy):

- on one, ``provision apply`` over SSH of an inventory with a NAT network: probe, install QEMU, libvirt
  and dnsmasq, fix /dev/kvm, start the daemons, probe again, render, define, write, verify;
- on the other, by hand: ``apt-get update`` and ``apt-get install --no-install-recommends`` of the very
  packages that apply installed (read from its report);
- then a second apply on the first node (it installs and changes nothing).

The proxy's cache is warmed by one untimed install first, so both sides fetch from it. Medians; the
ratio is provision's overhead over apt itself (target: at most 1.15); the second apply's target is
under 1 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.freshnode import AptProxy, FreshNode, rootfs  # noqa: E402
from tests.testhosts import HostNetwork  # noqa: E402

NAT = {"name": "guests", "bridge": "virbr9", "subnet": "192.168.209.0/24", "gateway": "192.168.209.1"}
PROVISION = str(ROOT / ".venv" / "bin" / "provision")
APT = ("apt-get -q update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends "
       "install \"$@\" >/dev/null")


def by_hand(base: Path, proxy: AptProxy, packages: list[str]) -> float:
    node = FreshNode(base, proxy)
    try:
        start = time.perf_counter()
        result = node.run("sh", "-c", APT, "sh", *packages, timeout=1800)
        seconds = time.perf_counter() - start
        if result.returncode:
            raise SystemExit(f"apt-get by hand failed: {result.stderr[-500:]}")
        return seconds
    finally:
        node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rootfs()
    work = Path(tempfile.mkdtemp(prefix="bench-bootstrap-"))
    proxy = AptProxy(work / "proxy")
    applies, hands, seconds_again = [], [], []
    try:
        with HostNetwork("pbb", "10.216.0") as net:
            inventory = None
            for run in range(args.runs):
                node = FreshNode(work / f"node{run}", proxy)
                try:
                    name = f"bare{run}"
                    node.attach(net, name)
                    node.write("/etc/libvirt/qemu.conf", "namespaces = [ ]\n")
                    data = net.inventory_data(groups={"compute": [name]})
                    data["all"]["vars"]["provision"] = {"network": {"nat": [NAT]}}
                    inventory = net.write_inventory(data, f"site{run}.yml")
                    if run == 0:  # warm the proxy's cache with the packages apply would install
                        plan = subprocess.run(net.client_argv(PROVISION, "apply", "-i", str(inventory), "--check", "-o", "json"),
                                              capture_output=True, text=True, timeout=600)
                        packages = [s["target"] for s in json.loads(plan.stdout)["hosts"][0]["steps"] if s["kind"] == "package"]
                        by_hand(work / "warm", proxy, packages)
                    start = time.perf_counter()
                    done = subprocess.run(net.client_argv(PROVISION, "apply", "-i", str(inventory), "-o", "json"),
                                          capture_output=True, text=True, timeout=1800)
                    applies.append(time.perf_counter() - start)
                    if done.returncode:
                        raise SystemExit(f"apply failed: {done.stdout[-1500:]} {done.stderr[-1500:]}")
                    installed = [s["target"] for s in json.loads(done.stdout)["hosts"][0]["steps"] if s["kind"] == "package"]
                    start = time.perf_counter()
                    again = subprocess.run(net.client_argv(PROVISION, "apply", "-i", str(inventory)), capture_output=True,
                                           text=True, timeout=600)
                    seconds_again.append(time.perf_counter() - start)
                    if again.returncode:
                        raise SystemExit(f"the second apply failed: {again.stdout[-1500:]}")
                finally:
                    node.stop()
                hands.append(by_hand(work / f"hand{run}", proxy, installed))
    finally:
        proxy.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)
    apply_median, hand_median = statistics.median(applies), statistics.median(hands)
    print(f"packages installed: {len(installed)} ({' '.join(installed)})")
    print(f"bare to converged, provision apply: median {apply_median:.2f} s over {len(applies)} runs")
    print(f"the same apt-get install by hand:   median {hand_median:.2f} s over {len(hands)} runs")
    print(f"ratio (apply / apt-get): {apply_median / hand_median:.2f} (target <= 1.15)")
    print(f"second apply (installs nothing):  median {statistics.median(seconds_again):.2f} s (target < 1 s)")


if __name__ == "__main__":
    main()
