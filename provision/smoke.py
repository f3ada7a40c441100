"""``provision smoke``: boot the canary guest on each node, wait for its marker, remove everything."""

from __future__ import annotations

import time

from provision.canary import MARKER, Canary
from provision.errors import InputError
from provision.guest_target import GuestTarget, NodeUnreachable, uri_for
from provision.guests import GuestError, open_backend
from provision.hosts import Node
from provision.results import CheckResult, HostReport, Report

BOOT_TIMEOUT = 15  # seconds for each of the preflight's canary boots (under KVM, then TCG)


def smoke_node(node: Node, canary: Canary, *, hooks, timeout: float) -> HostReport:
    """One node: its virt_type (pinned or decided), one canary boot through its libvirt."""
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
    finally:
        backend.close()
    return HostReport(node.name, True, decision, (check,), seconds=time.monotonic() - start)


def smoke(*, nodes: list[Node], canary: Canary, hooks, forks: int = 4, timeout: float = 60) -> Report:
    from provision.parallel import fan_out

    return Report(tuple(fan_out(lambda n: smoke_node(n, canary, hooks=hooks, timeout=timeout), nodes, forks=forks)))
