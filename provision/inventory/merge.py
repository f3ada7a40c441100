"""Ansible's variable precedence, with ``provision`` merged key by key.

Order, lowest first: ``all``, then groups by depth (parents before children; at the same
depth by name), then the host. Plain variables: the later value wins whole. The
``provision`` variable: dicts merge key by key, lists and scalars are replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from provision.inventory.model import Group

SETTINGS_VAR = "provision"


def group_depths(groups: dict[str, Group]) -> dict[str, int]:
    """Each group's depth below ``all`` (the longest path, as Ansible orders them)."""
    depths: dict[str, int] = {}

    def depth(name: str, seen: frozenset = frozenset()) -> int:
        if name in depths:
            return depths[name]
        parents = [p for p in groups[name].parents if p not in seen]
        depths[name] = 0 if name == "all" else 1 + max((depth(p, seen | {name}) for p in parents), default=0)
        return depths[name]

    for name in groups:
        depth(name)
    return depths


def host_groups(groups: dict[str, Group], host: str, depths: dict[str, int]) -> list[str]:
    """Every group the host is in, directly or through children, in precedence order
    (``depths`` from :func:`group_depths`, computed once per inventory)."""
    direct = {g.name for g in groups.values() if host in g.hosts}
    found: set[str] = set()
    stack = list(direct)
    while stack:
        name = stack.pop()
        if name not in found:
            found.add(name)
            stack.extend(groups[name].parents)
    found.add("all")
    return sorted(found, key=lambda g: (depths[g], g))


def deep_merge(base: dict, top: dict, origins: dict[tuple, Path], source: Path, prefix: tuple = ()) -> dict:
    """``top`` over ``base``, dict by dict; records which file set each path."""
    merged = dict(base)
    for key, value in top.items():
        path = (*prefix, key)
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value, origins, source, path)
        else:
            for old in [p for p in origins if p[: len(path)] == path]:
                del origins[old]  # a replaced subtree keeps no stale origins
            merged[key] = value
            _record(origins, path, value, source)
    return merged


def _record(origins: dict[tuple, Path], path: tuple, value: Any, source: Path) -> None:
    origins[path] = source
    if isinstance(value, dict):
        for key, sub in value.items():
            _record(origins, (*path, key), sub, source)


def merge_layers(layers: list[tuple[dict[str, Any], dict[str, Path]]]):
    """Merge (vars, var -> file) layers, lowest precedence first, into one host's view."""
    plain: dict[str, Any] = {}
    files: dict[str, Path] = {}
    settings: dict[str, Any] = {}
    settings_files: dict[tuple, Path] = {}
    for variables, var_files in layers:
        for name, value in variables.items():
            files[name] = var_files[name]
            if name == SETTINGS_VAR and isinstance(value, dict):
                settings = deep_merge(settings, value, settings_files, var_files[name])
            else:
                plain[name] = value
    if SETTINGS_VAR in files:
        plain[SETTINGS_VAR] = settings
    return plain, files, settings, settings_files
