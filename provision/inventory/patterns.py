"""Ansible's host patterns for ``--limit``: names, globs, ``a:b``, ``a:!b``, ``a:&b``."""

from __future__ import annotations

import fnmatch
import re

from provision.errors import InputError
from provision.inventory.model import Inventory


def _group_hosts(inv: Inventory, name: str, seen: set | None = None) -> set[str]:
    seen = seen if seen is not None else set()
    if name in seen:
        return set()
    seen.add(name)
    if name == "all":
        return set(inv.hosts)
    group = inv.groups[name]
    hosts = set(group.hosts)
    for child in group.children:
        hosts |= _group_hosts(inv, child, seen)
    return hosts


def _term_hosts(inv: Inventory, term: str) -> set[str]:
    if term in ("all", "*"):
        return set(inv.hosts)
    if term in inv.groups:
        return _group_hosts(inv, term)
    if term in inv.hosts:
        return {term}
    if any(c in term for c in "*?["):
        hosts = {h for h in inv.hosts if fnmatch.fnmatchcase(h, term)}
        for g in inv.groups:
            if fnmatch.fnmatchcase(g, term):
                hosts |= _group_hosts(inv, g)
        return hosts
    return set()


def select_hosts(inv: Inventory, pattern: str | None) -> list[str]:
    """The hosts ``pattern`` selects, in inventory order; nothing matched is an InputError."""
    if not pattern:
        return list(inv.hosts)
    terms = [t.strip() for t in re.split(r"[:,]", pattern) if t.strip()]
    union: set[str] = set()
    intersections, exclusions = [], []
    for term in terms:
        if term.startswith("!"):
            exclusions.append(_term_hosts(inv, term[1:]))
        elif term.startswith("&"):
            intersections.append(_term_hosts(inv, term[1:]))
        else:
            union |= _term_hosts(inv, term)
    for hosts in intersections:
        union &= hosts
    for hosts in exclusions:
        union -= hosts
    if not union:
        raise InputError(f"--limit {pattern!r} matches no host in {inv.source}; groups: {', '.join(inv.group_names())}")
    return [h for h in inv.hosts if h in union]
