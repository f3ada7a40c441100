"""Benchmark: the host network step's guarded commit, over SSH, in namespaces.

    .venv/bin/python bench/network_apply.py [--runs 5] [--confirm-timeout 8]

A node (tests/applynode.py: its own network, mount and PID namespaces, libvirtd and overlays) reached
by sshd there from a controller namespace (tests/testhosts.py), as the tests build it. Medians of
repeated runs, each on a node put back as it was:

- bridge move: `provision apply` moving the interface that carries the controller's connection into
  a bridge, from the start of apply to the confirmed commit (the command's exit); target under 3 s;
- rollback: the same move with a wrong address on the bridge, from the moment the change is visible
  on the node (the port in the bridge) to the node restored and reachable over SSH again; target
  under the confirm timeout plus 2 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from render import cpu_reference  # noqa: E402

from tests.applynode import OverlayNode  # noqa: E402
from tests.testhosts import HostNetwork  # noqa: E402

PROVISION = str(Path(sys.executable).with_name("provision"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--confirm-timeout", type=int, default=8)
    args = parser.parse_args()
    print(f"CPU reference (a 2,000,000-step Python loop): {cpu_reference():.3f} s; the figures below scale with it")
    base = Path(tempfile.mkdtemp(prefix="provision-bench-net-"))
    node = OverlayNode(base / "node")
    try:
        with HostNetwork("pvb", subnet="10.216.0") as net:
            address, port = net.add_managed_node("n1", node)

            def inventory(**bridge) -> str:
                data = net.inventory_data()
                data["all"]["vars"]["provision"] = {"virt_type": "qemu", "network": {
                    "bridges": [{"name": "br-provider", "interfaces": [port], **bridge}]}}
                return str(net.write_inventory(data, name=f"inv{len(bridge)}.yml"))

            def reset() -> None:  # the node as it was: no bridge, the address and route on the port
                node.sh(f"ip link del br-provider 2>/dev/null; ip addr replace {address}/24 dev {port}; "
                        "ip route replace default via 10.216.0.1; virsh -q net-destroy br-provider; "
                        "virsh -q net-undefine br-provider; rm -f /var/lib/provision/state.json")

            def reachable() -> bool:
                return subprocess.run(net.client_argv("ssh", "-i", str(net.key), *net.ssh_args().split(), "-o",
                                                      "ConnectTimeout=1", f"root@{address}", "true"),
                                      capture_output=True).returncode == 0

            good, bad = inventory(), inventory(addresses=["10.216.0.99/24"])
            moves, rollbacks = [], []
            for _ in range(args.runs):
                start = time.perf_counter()
                run = subprocess.run(net.client_argv(PROVISION, "apply", "-i", good, "--confirm-timeout", "30"),
                                     capture_output=True, text=True)
                moves.append(time.perf_counter() - start)
                if run.returncode:
                    raise SystemExit(f"the bridge move failed: {run.stdout}{run.stderr}")
                reset()
                apply = subprocess.Popen(net.client_argv(PROVISION, "apply", "-i", bad, "--confirm-timeout",
                                                         str(args.confirm_timeout), "--timeout", "30"),
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                give_up = time.perf_counter() + 60
                while "master br-provider" not in node.run("ip", "link", "show", port).stdout:
                    if time.perf_counter() > give_up or apply.poll() is not None:
                        raise SystemExit("the broken change never reached the node")
                    time.sleep(0.02)
                changed = time.perf_counter()
                while not (node.run("ip", "link", "show", "br-provider").returncode and reachable()):
                    if time.perf_counter() > changed + 120:
                        raise SystemExit("the node did not come back within 120 s")
                    time.sleep(0.05)
                rollbacks.append(time.perf_counter() - changed)
                apply.wait()
                reset()
    finally:
        node.stop()
    a, b = statistics.median(moves), statistics.median(rollbacks)
    print(f"bridge move of the management interface, apply to confirmed commit  median {a:.2f} s; runs "
          f"{', '.join(f'{t:.2f}' for t in moves)}; target < 3 s: {'met' if a < 3 else 'NOT met'}\n"
          f"broken change, visible on the node to restored and reachable  median {b:.2f} s; runs "
          f"{', '.join(f'{t:.2f}' for t in rollbacks)}; target < {args.confirm_timeout} + 2 s: "
          f"{'met' if b < args.confirm_timeout + 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
