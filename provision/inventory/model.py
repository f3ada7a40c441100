"""What a loaded inventory holds: Ansible's inventory, and each host's view of it as provision needs it
(its connection variables, its merged ``provision`` settings, and the file each value came from)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import InputError
from provision.inventory.resolve import CONNECTION_VARS, SETTINGS_VAR, InventoryHost  # noqa: F401 (their home before)

MAX_VALUES = 2_000_000  # values a setting may expand to, aliases followed: far above any real inventory
MAX_DEPTH = 64  # nesting: inventories are a few levels deep

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
