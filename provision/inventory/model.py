"""What a loaded inventory holds: groups, hosts, and where each value came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Group:
    name: str
    vars: dict[str, Any] = field(default_factory=dict)
    var_files: dict[str, Path] = field(default_factory=dict)  # var name -> file it was set in
    children: set[str] = field(default_factory=set)
    hosts: set[str] = field(default_factory=set)
    parents: set[str] = field(default_factory=set)


@dataclass
class InventoryHost:
    """One host with its variables merged in Ansible's order and its ``provision`` settings."""

    name: str
    groups: list[str]
    vars: dict[str, Any]
    var_files: dict[str, Path]  # plain var name -> file that set the winning value
    provision: dict[str, Any]  # merged key by key, before validation
    provision_files: dict[tuple, Path]  # path inside provision -> file that set it
    settings: dict[str, Any] = field(default_factory=dict)  # validated, defaults filled in

    def file_of(self, path: tuple) -> Path | None:
        """The file that set ``path`` (or its nearest parent) of the ``provision`` variable."""
        for n in range(len(path), 0, -1):
            if path[:n] in self.provision_files:
                return self.provision_files[path[:n]]
        return self.var_files.get("provision")


@dataclass
class Inventory:
    source: Path
    groups: dict[str, Group]
    hosts: dict[str, InventoryHost]
    warnings: list[str] = field(default_factory=list)

    def group_names(self) -> list[str]:
        return sorted(self.groups)

    def file_of(self, host: str, path: tuple) -> Path:
        """The file that set ``path`` of a host's ``provision`` variable, else the inventory itself."""
        return self.hosts[host].file_of(path) or self.source
