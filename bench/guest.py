"""Benchmark: canary boot-to-marker through `provision guest create` beside `virsh create` of the same XML,
and `provision smoke` on the local node.

    .venv/bin/python bench/guest.py [--runs 5]

Each sample is the wall time from starting the command to the marker line in the guest's serial
console log; the guest is then destroyed and undefined. Prints medians and the ratio (target <= 1.1).
Needs a running libvirtd and the canary (`provision canary build`).
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from provision.guests.canary import MARKER, find_canary

PROVISION = str(Path(sys.executable).with_name("provision"))
NAME = "pvbench-canary"
LOG = f"/var/log/libvirt/qemu/{NAME}-console.log"


def until_marker(argv: list[str], timeout: float = 60) -> float:
    Path(LOG).unlink(missing_ok=True)
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    while time.perf_counter() - start < timeout:
        try:
            if MARKER in Path(LOG).read_text():
                return time.perf_counter() - start
        except OSError:
            pass
        time.sleep(0.01)
    raise SystemExit(f"no marker within {timeout} s: {argv[:4]}")


def cleanup() -> None:
    subprocess.run(["virsh", "destroy", NAME], capture_output=True)
    subprocess.run(["virsh", "undefine", NAME], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    canary = find_canary()
    create = [PROVISION, "guest", "create", NAME, "--kernel", str(canary.kernel), "--initrd", str(canary.initrd),
              "--cmdline", canary.cmdline]
    xml = subprocess.run([*create, "--print-xml"], check=True, capture_output=True, text=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False) as fh:
        fh.write(xml)
    ours, theirs, smoke_wall, smoke_boot = [], [], [], []
    try:
        for _ in range(args.runs):
            cleanup()
            ours.append(until_marker(create))
            cleanup()
            theirs.append(until_marker(["virsh", "create", fh.name]))
            cleanup()
            start = time.perf_counter()
            out = subprocess.run([PROVISION, "smoke", "-o", "json"], capture_output=True, text=True)
            smoke_wall.append(time.perf_counter() - start)
            smoke_boot.append(json.loads(out.stdout)["hosts"][0]["checks"][0]["evidence"]["boot_seconds"])
    finally:
        cleanup()
        Path(fh.name).unlink()
    m_ours, m_theirs = statistics.median(ours), statistics.median(theirs)
    print(f"canary boot-to-marker, {args.runs} runs each, virt_type as this node decided:")
    print(f"  provision guest create   median {m_ours:.2f} s")
    print(f"  virsh create (same XML)  median {m_theirs:.2f} s")
    print(f"  ratio provision / virsh = {m_ours / m_theirs:.2f} (target <= 1.1)")
    print(f"provision smoke (local): median boot-to-marker {statistics.median(smoke_boot):.2f} s, "
          f"median wall {statistics.median(smoke_wall):.2f} s (upload, boot, clean-up)")


if __name__ == "__main__":
    main()
