"""What a loaded inventory holds: Ansible's inventory, and each host's view of it as provision needs it
(its connection variables, its merged ``provision`` settings, and the file each value came from)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import InputError

MAX_VALUES = 2_000_000  # values a setting may expand to, aliases followed: far above any real inventory
MAX_DEPTH = 64  # nesting: inventories are a few levels deep

# each connection setting provision reads, and the variables Ansible's connection plugins read it from,
# lowest precedence first (the last one set wins), as the ssh and paramiko plugins document them
CONNECTION_VARS: dict[str, tuple[str, ...]] = {
    "ansible_host": ("ansible_host", "ansible_ssh_host"),
    "ansible_port": ("ansible_port", "ansible_ssh_port"),
    "ansible_user": ("ansible_user", "ansible_ssh_user"),
    "ansible_connection": ("ansible_connection",),
    "ansible_ssh_private_key_file": ("ansible_private_key_file", "ansible_ssh_private_key_file"),
    "ansible_ssh_common_args": ("ansible_ssh_common_args",),
    "ansible_ssh_extra_args": ("ansible_ssh_extra_args",),
    "ansible_python_interpreter": ("ansible_python_interpreter",),
}


@dataclass
class InventoryHost:
    """One host as provision reads it; plain Python values only (it travels between processes)."""

    name: str
    groups: list[str]
    vars: dict[str, Any]  # connection settings by their canonical name (CONNECTION_VARS), templated
    var_files: dict[str, Path]  # canonical name -> the file that set the winning value
    var_names: dict[str, str]  # canonical name -> the variable the inventory used (ansible_ssh_user, ...)
    provision: dict[str, Any]  # merged key by key, templated, before validation
    provision_files: dict[tuple, Path]  # path inside provision -> file that set it
    implicit: bool = False  # Ansible's implicit localhost (not in the inventory)
    settings: dict[str, Any] = field(default_factory=dict)  # validated, defaults filled in

    def file_of(self, path: tuple) -> Path | None:
        """The file that set ``path`` (or its nearest parent) of the ``provision`` variable."""
        for n in range(len(path), -1, -1):
            if path[:n] in self.provision_files:
                return self.provision_files[path[:n]]
        return None

    def label(self, var: str) -> str:
        """The variable as the inventory spelt it: ``ansible_ssh_user`` where that set the user."""
        return self.var_names.get(var, var)


@dataclass
class Inventory:
    """Ansible's inventory (manager, variable manager, loader) and what reading it warned about."""

    source: Path
    manager: Any = field(repr=False)
    variables: Any = field(repr=False)
    loader: Any = field(repr=False)
    warnings: list[str] = field(default_factory=list)

    def group_names(self) -> list[str]:
        return sorted(self.manager.groups)

    def select(self, pattern: str | None) -> list[str]:
        """The hosts ``pattern`` selects (Ansible's pattern grammar), in Ansible's order; none is an error."""
        from ansible.errors import AnsibleError

        try:
            hosts = self.manager.get_hosts(pattern or "all")
        except AnsibleError as exc:
            raise InputError(f"--limit {pattern!r}: {exc.message}") from None
        except (IndexError, ValueError, TypeError):  # Ansible's pattern parser on '!' or '&' alone
            raise InputError(f"--limit {pattern!r}: not a host pattern (names, globs, groups, joined by ':', "
                             "'!' or '&' before a name)") from None
        if not hosts:
            if pattern:
                raise InputError(f"--limit {pattern!r} matches no host in {self.source}; groups: "
                                 f"{', '.join(self.group_names())}")
            said = "".join(f"\n  {w}" for w in self.warnings)
            raise InputError(f"{self.source}: the inventory has no hosts{said}")
        return [h.name for h in hosts]

    def host(self, name: str) -> InventoryHost:
        """``name`` as provision reads it; an :class:`InputError` names the host, variable and file."""
        from provision.inventory.resolve import resolve_host

        return resolve_host(self, name)


def bounded(data: Any) -> str | None:
    """Why ``data`` cannot be walked, or None: YAML aliases that expand it beyond MAX_VALUES (a 'billion
    laughs' of a few hundred bytes), an alias that refers to a value holding it, or nesting deeper than
    MAX_DEPTH. Each distinct list or mapping is measured once, so this costs what the data is long."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, int, bool]] = [(data, 0, False)]
    open_ids: set[int] = set()
    while stack:
        value, depth, done = stack.pop()
        if not isinstance(value, dict | list):
            continue
        key = id(value)
        children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        if done:
            open_ids.discard(key)
            total = 1 + sum(sizes.get(id(c), 1) for c in children)
            if total > MAX_VALUES:
                return f"expands to more than {MAX_VALUES:,} values (YAML aliases that repeat each other?)"
            sizes[key] = total
            continue
        if key in open_ids:
            return "a YAML alias refers to a value that holds it (a loop)"
        if key in sizes:
            continue
        if depth > MAX_DEPTH:
            return f"nested more than {MAX_DEPTH} levels deep"
        open_ids.add(key)
        stack.append((value, depth, True))
        stack.extend((c, depth + 1, False) for c in children if isinstance(c, dict | list))
    return None
