"""Benchmark: reading a large inventory, beside Ansible reading the same file.

    .venv/bin/python bench/inventory.py [--hosts 10000] [--runs 3]

`provision inventory hosts -i site.yml` (load with ansible-core's engine, resolve and validate
every host) beside `ansible-inventory -i site.yml --list` (Ansible's own listing: load, every
host's variables, JSON), medians of repeated runs in one sitting, and the ratio. The inventory is
bench/render.py's (every storage and network kind). Target: provision no slower than Ansible.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render import cpu_reference, inventory, timed

BIN = Path(sys.executable).parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"CPU reference (a 2,000,000-step Python loop): {cpu_reference():.3f} s; the figures below scale with it")
    with tempfile.TemporaryDirectory(prefix="provision-bench-inventory-") as work:
        inv = Path(work) / "site.yml"
        inv.write_text(yaml.safe_dump(inventory(args.hosts), sort_keys=False))
        ours, theirs = [], []
        for _ in range(args.runs):  # alternated, so both see the same phases of this VM
            ours.append(timed([str(BIN / "provision"), "inventory", "hosts", "-i", str(inv)]))
            theirs.append(timed([str(BIN / "ansible-inventory"), "-i", str(inv), "--list"]))
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"{args.hosts} hosts\n"
              f"  provision inventory hosts  median {a:.2f} s; runs {', '.join(f'{t:.2f}' for t in ours)}\n"
              f"  ansible-inventory --list   median {b:.2f} s; runs {', '.join(f'{t:.2f}' for t in theirs)}\n"
              f"  ratio provision/ansible {a / b:.2f}; target <= 1: {'met' if a <= b else 'NOT met'}")


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"({time.monotonic() - started:.0f} s)")
