"""Benchmark: `provision render` of a generated 1,000-host inventory with every storage and network kind.

    .venv/bin/python bench/render.py [--hosts 1000] [--runs 5]

Prints the median wall time over repeated runs beside the median of `cp -a` of the same tree
(what creating those files alone costs there), and the ratio, on three filesystems:

- tmpfs (/dev/shm): no disk at all;
- this machine's root filesystem;
- a fresh ext4 with a journal (mkfs.ext4's defaults, as a Debian install has it) on a loop device
  whose image lives on this disk: the figure that stands for a node's or a laptop's disk.

Before every timed run it waits until no earlier writes are pending (Dirty and Writeback in
/proc/meminfo), so no run pays for the kernel writing back another's files.

The root filesystem here is an ext4 *without* a journal, where the kernel avoids reusing an inode
deleted in the last 60 s (360 s while its inode table block is dirty) and scans past every such
inode on each new file (fs/ext4/ialloc.c, ``recently_deleted``): after the test suite or an
earlier run deleted tens of thousands of files, creating files costs several times more. The
benchmark says so when it finds such a filesystem.

Target: under 2 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
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


def journal_less(path: Path) -> bool:
    """Whether ``path`` is on an ext4 without a journal (where inode allocation skips, slowly,
    every inode deleted in the last 60-360 s: fs/ext4/ialloc.c ``recently_deleted``)."""
    dev = os.stat(path).st_dev
    name = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}").resolve().name
    task = Path(f"/sys/fs/ext4/{name}/journal_task")
    return task.is_file() and task.read_text().strip() == "<none>"


@contextlib.contextmanager
def journaled_ext4(base: Path, size: str = "16G"):
    """A fresh ext4 made with mkfs.ext4's defaults (journal on, as a Debian install has it),
    on a loop device whose sparse image lives on this disk; None where that cannot be made."""
    image, mnt = base / "bench-ext4.img", Path(tempfile.mkdtemp(prefix="provision-bench-mnt-"))
    try:
        subprocess.run(["truncate", "-s", size, str(image)], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
        subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"(no journaled ext4 on a loop device here: {exc})")
        image.unlink(missing_ok=True)
        mnt.rmdir()
        yield None
        return
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
        mnt.rmdir()
        image.unlink()


def settle(limit_kib: int = 2048, timeout: float = 120) -> None:
    """Wait until no earlier run's writes are pending. This VM's disk is rate-limited, and a
    loop device's writes reach it in a second round (the image file's own dirty pages), which
    one ``sync`` does not wait for: the kernel's writeback would run, on these 2 CPUs, during
    the next measurement."""
    deadline = time.monotonic() + timeout
    while True:
        subprocess.run(["sync"])
        meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        pending = sum(int(meminfo[k].split()[0]) for k in ("Dirty", "Writeback"))
        if pending < limit_kib or time.monotonic() > deadline:
            return
        time.sleep(0.5)


def timed(argv: list[str]) -> float:
    settle()  # a run must not pay for another run's writes
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{' '.join(argv)}: {proc.stderr}")
    return elapsed


def measure(label: str, base: Path, hosts: int, runs: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="provision-bench-render-", dir=base))
    try:
        inv = work / "site.yml"
        inv.write_text(yaml.safe_dump(inventory(hosts), sort_keys=False))
        renders = [timed([PROVISION, "render", "-i", str(inv), "--out", str(work / f"out{run}")]) for run in range(runs)]
        # the floor: the same tree copied by cp, i.e. what creating these files costs on this filesystem
        copies = [timed(["cp", "-a", str(work / "out0"), str(work / f"copy{run}")]) for run in range(runs)]
        files = sum(1 for p in (work / "out0").rglob("*") if p.is_file())
        render, copy = statistics.median(renders), statistics.median(copies)
        print(f"{label}: {hosts} hosts, {files} files\n"
              f"  provision render  median {render:.3f} s ({render / hosts * 1000:.2f} ms per host); "
              f"runs {', '.join(f'{t:.2f}' for t in renders)}\n"
              f"  cp -a of the tree median {copy:.3f} s; runs {', '.join(f'{t:.2f}' for t in copies)}\n"
              f"  ratio render/cp {render / copy:.1f}; target < 2 s: {'met' if render < 2 else 'NOT met'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cpu_reference() -> float:
    """Median time of a fixed pure-Python loop: this VM's CPU speed varies by half over a day, and
    every figure below moves with it."""
    def loop() -> float:
        start = time.perf_counter()
        total = 0
        for i in range(2_000_000):
            total += i * i
        return time.perf_counter() - start

    return statistics.median(loop() for _ in range(5))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cache = ROOT / ".cache"
    cache.mkdir(exist_ok=True)
    print(f"CPU reference (a 2,000,000-step Python loop): {cpu_reference():.3f} s; the figures below scale with it")
    # tmpfs first and the loop device last: removing the loop device's image is the heaviest
    # disk work here, and nothing is measured after it
    if Path("/dev/shm").is_dir():
        measure("tmpfs (/dev/shm)", Path("/dev/shm"), args.hosts, args.runs)
    label = f"this machine's root filesystem ({cache})"
    if journal_less(cache):
        label += (" -- ext4 WITHOUT a journal: inode allocation there scans every inode deleted in the last "
                  "60-360 s, so these figures depend on what was deleted before (the test suite deletes plenty)")
    measure(label, cache, args.hosts, args.runs)
    with journaled_ext4(cache) as mnt:
        if mnt:
            measure("ext4 with a journal (mkfs.ext4 defaults, loop device on this disk)", mnt, args.hosts, args.runs)


if __name__ == "__main__":
    main()
