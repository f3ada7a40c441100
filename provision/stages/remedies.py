"""Remedies: what ``apply`` installs, loads and starts on a node before it configures it, so that a fresh
OS becomes a compute node in one run. Plugins say what fixes their own failing checks
(:func:`~provision.hookspecs.provision_remedies`); here they are merged per node and carried out by
provision/node/remedy.py in one round trip (``--check``: only planned)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from provision.api import Remedy
from provision.remote.hosts import Node

# an install may take minutes (QEMU and libvirt: 16 s here from a cache, 110 s with recommends); the
# wait for another package manager's lock is --timeout, on top of this
INSTALL_SECONDS = 1800
ACTIONS = ("install", "load", "start", "restart")  # what a remedy does, beside update (a device's mode)


def spec_for(remedies: Sequence[Remedy], *, check: bool, timeout: float) -> dict[str, Any]:
    """One node's remedies merged into the node program's spec: each package, module, device and service
    once, in the plugins' order."""
    packages: dict[str, list[str]] = {}
    modules: list[str] = []
    devices: list[list[str]] = []
    services: list[dict[str, Any]] = []
    for remedy in remedies:
        for family, names in remedy.packages.items():
            packages.setdefault(family, []).extend(n for n in names if n not in packages[family])
        modules += [m for m in remedy.modules if m not in modules]
        devices += [list(d) for d in remedy.devices if list(d) not in devices]
        known = {s["name"] for s in services}
        services += [dataclasses.asdict(s) for s in remedy.services if s.name not in known]
    return {"check": check, "timeout": timeout, "packages": packages, "modules": modules, "devices": devices,
            "services": services}


def run(node: Node, remedies: Sequence[Remedy], *, check: bool, timeout: float):
    """Carry out (or with ``check`` plan) ``remedies`` on ``node``: ``(steps, error)``; each step a dict
    with ``kind`` (``package``, ``module``, ``device``, ``service``), ``target``, ``action``, ``why``
    and ``seconds``, as the apply agent reports its steps."""
    from provision.node import REMEDY
    from provision.remote.probe import Unreachable, run_bundle

    spec = spec_for(remedies, check=check, timeout=timeout)
    bound = timeout if check else timeout + INSTALL_SECONDS
    try:
        answer = run_bundle(node.spec, REMEDY, spec, timeout=bound)
    except Unreachable as exc:
        return (), f"remedies: {exc}"
    steps = tuple(s for s in answer.get("steps", ()) if s.get("action") != "unchanged")
    error = answer.get("error") or ""
    if error:
        error = (f"{'remedies refused' if answer.get('refused') else 'remedies failed'}, no configuration was "
                 f"changed: {error}")
    return steps, error


def refusal(failing, remedies: Sequence[Remedy], *, enabled: bool) -> str:
    """Why a node whose checks fail is refused: each failing check no live remedy fixes, with what the
    operator must do where a plugin named it; empty when remedies fix every one."""
    live = {r.check for r in remedies if r.live} if enabled else set()
    manual = {r.check: r.manual for r in remedies if r.manual}
    unfixed = [c for c in failing if c.id not in live]
    if not unfixed:
        return ""
    parts = []
    for c in unfixed:
        text = f"{c.id}: {c.message}"
        if c.id in manual:
            text += f" (apply cannot do this live: {manual[c.id]})"
        elif not enabled and any(r.check == c.id and r.live for r in remedies):
            text += " (apply would fix it, but remedies are off)"
        parts.append(text)
    return "refused by preflight, nothing was changed: " + "; ".join(parts)
