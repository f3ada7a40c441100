"""Benchmark: `provision preflight` on the local node beside `virt-host-validate qemu`, same run.

    .venv/bin/python bench/preflight_local.py [--runs 15]

Prints the median wall time of each and the ratio (provision / virt-host-validate).
Target: provision under 0.5 s median.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROVISION = str(Path(sys.executable).with_name("provision"))


def median_seconds(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    subprocess.run([PROVISION, "preflight", "-o", "json"], stdout=subprocess.DEVNULL)  # warm the page cache
    ours = median_seconds([PROVISION, "preflight", "-o", "json"], args.runs)
    print(f"provision preflight      median {ours:.3f} s over {args.runs} runs")
    peer = shutil.which("virt-host-validate")
    if not peer:
        print("virt-host-validate not installed (apt-get install libvirt-clients): no ratio")
        return
    theirs = median_seconds([peer, "qemu"], args.runs)
    print(f"virt-host-validate qemu  median {theirs:.3f} s over {args.runs} runs")
    print(f"ratio provision / virt-host-validate = {ours / theirs:.2f}")
    print(f"target < 0.5 s: {'met' if ours < 0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
