"""Memory and disk: enough for a compute node to host guests."""

from __future__ import annotations

import re

from provision.checks import CheckSet, failed, passed, warned
from provision.facts import Facts
from provision.hookspecs import hookimpl

checks = CheckSet()

GIB = 1024**3
MEMORY_FAIL, MEMORY_WARN = 2 * GIB, 8 * GIB
DISK_FAIL, DISK_WARN = 5 * GIB, 50 * GIB
INSTANCES_DIR = "/var/lib/nova/instances"


@hookimpl
def provision_probe():
    return {
        "resources.meminfo": {"op": "read", "path": "/proc/meminfo"},
        "resources.instances_fs": {"op": "statvfs", "path": INSTANCES_DIR},
    }


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


@checks.register("resources.memory", f"memory: at least {_gib(MEMORY_FAIL)}, {_gib(MEMORY_WARN)} recommended")
def memory(facts: Facts, settings):
    text = facts.text("resources.meminfo")
    match = re.search(r"^MemTotal:\s+(\d+) kB", text or "", re.M)
    if not match:
        return failed("cannot read MemTotal", facts.evidence("resources.meminfo"), "check /proc/meminfo")
    total = int(match.group(1)) * 1024
    evidence = {"/proc/meminfo MemTotal": _gib(total)}
    if total < MEMORY_FAIL:
        return failed(f"{_gib(total)} of memory: too little to host guests", evidence, "add memory")
    if total < MEMORY_WARN:
        return warned(f"{_gib(total)} of memory: room for few guests", evidence, "add memory")
    return passed(f"{_gib(total)} of memory", evidence)


@checks.register("resources.disk", f"free space for {INSTANCES_DIR}: at least {_gib(DISK_FAIL)}")
def disk(facts: Facts, settings):
    ans = facts.answer("resources.instances_fs")
    if "error" in ans:
        return failed(f"cannot stat the filesystem of {INSTANCES_DIR}", facts.evidence("resources.instances_fs"),
                      "check the mount")
    evidence = {f"statvfs {ans['path']}": f"{_gib(ans['free'])} free of {_gib(ans['total'])}"}
    if ans["free"] < DISK_FAIL:
        return failed(f"{_gib(ans['free'])} free for {INSTANCES_DIR}", evidence, "free space or mount a larger volume")
    if ans["free"] < DISK_WARN:
        return warned(f"{_gib(ans['free'])} free for {INSTANCES_DIR}: room for few guest disks", evidence,
                      "mount a larger volume there")
    return passed(f"{_gib(ans['free'])} free for {INSTANCES_DIR}", evidence)


provision_check_catalog, provision_checks = checks.hooks()
