"""``provision smoke``: boot the canary guest on each node, wait for its marker, remove everything."""

from __future__ import annotations

import time

from provision.errors import InputError
from provision.guests import GuestError, open_backend
from provision.guests.canary import MARKER, Canary
from provision.guests.target import GuestTarget, NodeUnreachable, uri_for
from provision.remote.hosts import Node
from provision.results import CheckResult, HostReport, Report

BOOT_TIMEOUT = 15  # seconds for each of the preflight's canary boots (under KVM, then TCG)


def smoke_node(node: Node, canary: Canary, *, hooks, timeout: float, storage: bool = False) -> HostReport:
    """One node: its virt_type (pinned or decided), one canary boot through its libvirt; with ``storage``,
    a second boot with a disk from each of the node's pools (one ``smoke.storage.<pool>`` check each)."""
    start = time.monotonic()
    target = GuestTarget(uri_for(node.spec), node, node.settings.get("virt_type"))
    try:
        # the preflight behind an unpinned decision boots the canary with QEMU itself first (kvm.boot):
        # never a libvirt guest under KVM on a node where QEMU's own KVM boot fails
        decision = target.decision(hooks, timeout=timeout, functional=BOOT_TIMEOUT)
    except NodeUnreachable as exc:
        return HostReport(node.name, False, error=str(exc), seconds=time.monotonic() - start)
    except InputError as exc:  # e.g. kvm pinned on a node that decided qemu: no canary is booted
        check = CheckResult("smoke.boot", "fail", str(exc), {"uri": target.uri},
                            "pin virt_type qemu for this node, or fix what its preflight reports")
        return HostReport(node.name, True, None, (check,), seconds=time.monotonic() - start)
    virt_type = decision.virt_type
    try:
        backend = open_backend(target.uri, hooks)
    except GuestError as exc:
        return HostReport(node.name, False, decision, error=str(exc), seconds=time.monotonic() - start)
    try:
        seconds, console = backend.boot_canary(canary, virt_type, MARKER, timeout)
        line = next((ln.strip() for ln in console.splitlines() if MARKER in ln), "")
        check = CheckResult("smoke.boot", "pass", f"canary booted under {virt_type} in {seconds:.2f} s",
                            {"uri": target.uri, "boot_seconds": round(seconds, 3), "console": line})
    except GuestError as exc:
        check = CheckResult("smoke.boot", "fail", str(exc), {"uri": target.uri},
                            "check libvirtd on the node (virsh -c URI list) and its QEMU log in /var/log/libvirt/qemu")
    checks = [check]
    try:
        if storage and check.status == "pass":
            checks += storage_checks(backend, node, canary, decision, hooks=hooks, timeout=timeout)
    finally:
        backend.close()
    return HostReport(node.name, True, decision, tuple(checks), seconds=time.monotonic() - start)


def node_pools(node: Node, decision, *, hooks) -> list[str]:
    """The libvirt pools the node's rendered configuration defines, whichever plugins name them."""
    from provision.stages.apply import objects_for
    from provision.stages.render import render_all

    decisions = {node.name: decision} if decision else {}
    rendered = render_all(nodes=[node], decisions=decisions, hooks=hooks)
    objects = objects_for(nodes=[node], rendered=rendered, decisions=decisions, hooks=hooks)[node.name]
    return [o["name"] for o in objects if o["kind"] == "pool"]


def storage_checks(backend, node: Node, canary: Canary, decision, *, hooks, timeout: float) -> list[CheckResult]:
    """One canary boot with a disk from each pool of the node: a check per pool, with the time its
    marker took to be written and read back, or why not (the pool's own refusal)."""
    pools = node_pools(node, decision, hooks=hooks)
    if not pools:
        return [CheckResult("smoke.storage", "skip", "the inventory gives this node no storage pool")]
    try:
        results = backend.storage_canary(canary, decision.virt_type, pools, MARKER, timeout)
    except GuestError as exc:
        results = {p: {"ok": False, "seconds": None, "why": str(exc)} for p in pools}
    checks = []
    for pool in pools:
        r = results.get(pool) or {"ok": False, "seconds": None, "why": "no result"}
        evidence = {"pool": pool, **({"seconds": r["seconds"]} if r["seconds"] is not None else {}),
                    **({"boot_seconds": r["boot_seconds"]} if r.get("boot_seconds") is not None else {})}
        if r["ok"]:
            checks.append(CheckResult(f"smoke.storage.{pool}", "pass", f"the canary wrote a marker to a disk from "
                                      f"pool {pool} and read it back in {r['seconds']:.2f} s", evidence))
        else:
            checks.append(CheckResult(f"smoke.storage.{pool}", "fail", f"pool {pool}: {r['why']}", evidence,
                                      "check the pool (virsh pool-info, vol-create-as) and the node's storage drivers"))
    return checks


def smoke(*, nodes: list[Node], canary: Canary, hooks, forks: int = 4, timeout: float = 60,
          storage: bool = False) -> Report:
    from provision.parallel import fan_out
    from provision.stages.defaults import with_defaults

    if storage:
        nodes = with_defaults(nodes, hooks=hooks)
    return Report(tuple(fan_out(lambda n: smoke_node(n, canary, hooks=hooks, timeout=timeout, storage=storage),
                                nodes, forks=forks)))
