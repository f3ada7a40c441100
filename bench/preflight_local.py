"""Benchmark: `provision preflight` on the local node beside `virt-host-validate qemu` and
`python -c pass`, in the same run; `provision --help`; the vCPU run (kvm.run) inside the probe; and
`provision preflight --functional` (the canary booted under KVM, then under TCG where KVM fails).

    .venv/bin/python bench/preflight_local.py [--runs 15] [--functional-runs 3]

Prints the median wall time of each and the ratios; preflight also with the settings defaults not
kept between runs (as on the first run after an install or a code change).
Targets (issues #13, #14): preflight at most 0.2 s, --help at most 0.15 s, kvm.run under 10 ms,
preflight --functional under 20 s here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROVISION = str(Path(sys.executable).with_name("provision"))


def median_seconds(argv: list[str], runs: int, env: dict | None = None) -> tuple[float, list[str]]:
    """The median wall time of ``argv`` and the stdout of each run."""
    times, outputs = [], []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              env={**os.environ, **(env or {})})
        times.append(time.perf_counter() - start)
        outputs.append(proc.stdout)
    return statistics.median(times), outputs


def verdict(value: float, target: float) -> str:
    return f"target < {target:g} s: {'met' if value < target else 'NOT met'}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--functional-runs", type=int, default=3)
    args = parser.parse_args()
    subprocess.run([PROVISION, "preflight", "-o", "json"], stdout=subprocess.DEVNULL)  # warm the page cache
    floor, _ = median_seconds([sys.executable, "-c", "pass"], args.runs)
    print(f"python -c pass               median {floor:.3f} s over {args.runs} runs")
    helped, _ = median_seconds([PROVISION, "--help"], args.runs)
    print(f"provision --help             median {helped:.3f} s; {verdict(helped, 0.15)}")
    ours, _ = median_seconds([PROVISION, "preflight"], args.runs)
    print(f"provision preflight          median {ours:.3f} s (the table); {verdict(ours, 0.2)}")
    uncached, _ = median_seconds([PROVISION, "preflight"], args.runs, env={"PROVISION_CACHE_DIR": "off"})
    print(f"  the same, defaults not kept median {uncached:.3f} s (PROVISION_CACHE_DIR=off: pydantic builds them, "
          "as on the first run after an install or a change)")
    as_json, outputs = median_seconds([PROVISION, "preflight", "-o", "json"], args.runs)
    print(f"provision preflight -o json  median {as_json:.3f} s")
    runs_ms = [c["evidence"]["KVM_RUN"] for out in outputs for c in json.loads(out)["hosts"][0]["checks"] if c["id"] == "kvm.run"]
    ms = [float(t.rsplit(" in ", 1)[1].split()[0]) for t in runs_ms if " in " in t and t.endswith(" ms")]
    if ms:
        print(f"kvm.run inside the probe     median {statistics.median(ms):.2f} ms; {verdict(statistics.median(ms) / 1000, 0.01)}")
    else:
        print(f"kvm.run did not run here: {runs_ms[:1]}")
    peer = shutil.which("virt-host-validate")
    if peer:
        theirs, _ = median_seconds([peer, "qemu"], args.runs)
        print(f"virt-host-validate qemu      median {theirs:.3f} s")
        print(f"ratio provision preflight / virt-host-validate = {ours / theirs:.1f}; "
              f"over python -c pass = {ours / floor:.1f}")
    else:
        print("virt-host-validate not installed (apt-get install libvirt-clients): no ratio")
    if args.functional_runs:
        functional, outputs = median_seconds([PROVISION, "preflight", "--functional", "-o", "json"], args.functional_runs)
        boot = next(c for c in json.loads(outputs[0])["hosts"][0]["checks"] if c["id"] == "kvm.boot")
        print(f"provision preflight --functional median {functional:.2f} s over {args.functional_runs} runs; "
              f"{verdict(functional, 20)}\n  kvm.boot: {boot['status']}: {boot['message']}")


if __name__ == "__main__":
    main()
