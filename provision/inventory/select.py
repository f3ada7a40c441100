"""From ``-i``/``-l`` (or ``-H``) to the nodes to act on, validated before any is contacted."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from provision.errors import InputError
from provision.inventory.model import Inventory
from provision.remote.hosts import Node, parse_host_spec
from provision.secrets import REDACTED, holds_secret


@dataclass(frozen=True)
class Selection:
    nodes: list[Node]
    warnings: list[str]
    inventory: Inventory | None = None


def select_nodes(*, inventory: str | None, limit: str | None = None, hosts: list[str] | None = None,
                 hooks) -> Selection:
    """The nodes named by an inventory and a limit, or by host specs, or the local node."""
    if inventory and hosts:
        raise InputError("use either --inventory/-i or --host/-H, not both")
    if not inventory:
        specs = [parse_host_spec(h) for h in hosts or ["local://"]]
        if limit:
            specs = [s for s in specs if s.name == limit]
            if not specs:
                raise InputError(f"--limit {limit!r} matches no host; without -i the hosts are: "
                                 f"{', '.join(parse_host_spec(h).name for h in hosts or ['local://'])}")
        if any(s.scheme == "ansible" for s in specs):
            return _through_ansible_inventory(specs, hooks)
        return Selection([Node(s) for s in specs], [])
    from provision.inventory.load import load_inventory  # only with -i: Ansible is not free to import
    from provision.inventory.validate import validate_inventory

    inv = load_inventory(inventory)
    checked = validate_inventory(inv, inv.select(limit), hooks)
    return Selection([_inventory_node(host, spec, inv) for host, spec in checked], inv.warnings, inv)


def _through_ansible_inventory(specs, hooks) -> Selection:
    """``ansible://NAME`` is host NAME of the inventory Ansible is configured with (ANSIBLE_INVENTORY,
    ansible.cfg), read and validated as ``-i`` reads it: its connection from that host's variables
    (ssh from an argument vector; testinfra's own ansible:// backend joined them into a shell command
    line on this machine), its settings from its ``provision`` variable."""
    from provision.inventory.load import ansible_constants, load_inventory
    from provision.inventory.validate import validate_inventory

    C = ansible_constants()
    configured = [str(s) for s in C.DEFAULT_HOST_LIST]
    sources = [s for s in configured if os.path.exists(s)]
    first = next(s.spec for s in specs if s.scheme == "ansible")
    if len(sources) != 1:
        found = ("it names several that exist" if sources else
                 "it does not exist" if len(configured) == 1 else "none of them exists")
        raise InputError(f"{first}: Ansible's configured inventory ({', '.join(configured)}): {found}; "
                         "give the inventory with -i INVENTORY -l HOST")
    inv = load_inventory(sources[0])
    names = list(dict.fromkeys(s.address for s in specs if s.scheme == "ansible"))
    unknown = [n for n in names if inv.manager.get_host(n) is None]
    if unknown:
        raise InputError(f"{sources[0]} (Ansible's configured inventory) has no host {', '.join(map(repr, unknown))}; "
                         f"hosts: {', '.join(inv.select(None))}")
    checked = {host.name: _inventory_node(host, spec, inv) for host, spec in validate_inventory(inv, names, hooks)}
    return Selection([checked[s.address] if s.scheme == "ansible" else Node(s) for s in specs], inv.warnings, inv)


def _inventory_node(host, spec, inv) -> Node:
    """The node of a validated inventory host; messages about its settings name the file that set them."""
    return Node(spec, tuple(host.groups), host.settings, file_of=lambda path: host.file_of(path) or inv.source)


def redact(value: Any) -> Any:
    """``value`` with every secret-named key's value replaced (CHAP passwords, Ceph keys, tokens)."""
    if isinstance(value, dict):
        return {k: (REDACTED if holds_secret(str(k)) and v is not None else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def describe_host(*, inventory: str, host: str, hooks) -> dict[str, Any]:
    """What ``provision inventory show`` prints for one host."""
    from provision.inventory.load import load_inventory
    from provision.inventory.validate import validate_inventory

    inv = load_inventory(inventory)
    if inv.manager.get_host(host) is None:
        raise InputError(f"{inventory}: no host {host!r}; hosts: {', '.join(inv.select(None))}")
    (found, spec), = validate_inventory(inv, [host], hooks)
    return {"host": found.name, "connection": spec.spec, "groups": list(found.groups),
            "provision": redact(found.settings)}
