"""Read an Ansible YAML inventory (a file or a folder) with its group_vars/ and host_vars/."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from provision.addresses import inventory_host_name
from provision.errors import InputError
from provision.inventory.merge import SETTINGS_VAR, group_depths, host_groups, merge_layers
from provision.inventory.model import Group, Inventory, InventoryHost

YAML_SUFFIXES = ("", ".yml", ".yaml")
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster on large inventories
GROUP_KEYS = {"hosts", "vars", "children"}


MAX_VALUES = 2_000_000  # values a file may expand to, aliases followed: far above any real inventory
MAX_DEPTH = 64  # nesting: inventories are a few levels deep


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r}); "
                         "is it an encrypted or binary file?") from None
    try:
        data = yaml.load(text, Loader=SafeLoader)
        bounded(data, path)
        return data
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise InputError(f"{where}: malformed YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: malformed YAML: {exc}") from None
    except RecursionError:
        raise InputError(f"{path}: nested too deeply for an inventory (more than {MAX_DEPTH} levels)") from None


def bounded(data: Any, path: Path) -> None:
    """Refuse data that aliases expand beyond MAX_VALUES (a 'billion laughs' file of a few hundred bytes),
    that refers to itself, or that nests deeper than MAX_DEPTH, before anything walks it. Each distinct
    list or mapping is measured once, so this costs as much as the file is long."""
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
                raise InputError(f"{path}: expands to more than {MAX_VALUES:,} values (YAML aliases that repeat "
                                 "each other?); refused")
            sizes[key] = total
            continue
        if key in open_ids:
            raise InputError(f"{path}: a YAML alias refers to a value that holds it (a loop); refused")
        if key in sizes:
            continue
        if depth > MAX_DEPTH:
            raise InputError(f"{path}: nested too deeply for an inventory (more than {MAX_DEPTH} levels)")
        open_ids.add(key)
        stack.append((value, depth, True))
        stack.extend((c, depth + 1, False) for c in children if isinstance(c, dict | list))


def _mapping(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{where}: must be a mapping (got {type(value).__name__})")
    return value


def _check_settings_type(variables: dict, where: str) -> None:
    if SETTINGS_VAR in variables and not isinstance(variables[SETTINGS_VAR], dict | None):
        raise InputError(f"{where}: {SETTINGS_VAR}: must be a mapping (got {type(variables[SETTINGS_VAR]).__name__})")


class _Reader:
    def __init__(self) -> None:
        self.groups: dict[str, Group] = {"all": Group("all")}
        self.host_vars: dict[str, tuple[dict, Path]] = {}

    def group(self, name: str) -> Group:
        return self.groups.setdefault(name, Group(name))

    def read_group(self, name: str, body: Any, path: Path, parent: str | None) -> None:
        where = f"{path}: group {name}"
        body = _mapping(body, where)
        if unknown := sorted(set(body) - GROUP_KEYS):
            raise InputError(f"{where}: unknown key {', '.join(map(repr, unknown))} (a group has hosts, vars, children)")
        group = self.group(name)
        if parent:
            group.parents.add(parent)
            self.group(parent).children.add(name)
        variables = _mapping(body.get("vars"), f"{where}: vars")
        _check_settings_type(variables, f"{where}: vars")
        group.vars.update(variables)
        group.var_files.update({k: path for k in variables})
        for host, hvars in _mapping(body.get("hosts"), f"{where}: hosts").items():
            try:
                inventory_host_name(str(host))
            except ValueError as exc:
                raise InputError(f"{path}: host {str(host)!r}: {exc} (a host's name names its folder in "
                                 "host_vars/ and render --out, and heads every file rendered for it)") from None
            hvars = _mapping(hvars, f"{path}: host {host}")
            _check_settings_type(hvars, f"{path}: host {host}")
            group.hosts.add(str(host))
            old, _ = self.host_vars.get(str(host), ({}, path))
            self.host_vars[str(host)] = ({**old, **hvars}, path)
        for child, child_body in _mapping(body.get("children"), f"{where}: children").items():
            self.read_group(str(child), child_body, path, name)

    def read_file(self, path: Path) -> None:
        data = _mapping(read_yaml(path), str(path))
        for name, body in data.items():
            self.read_group(str(name), body, path, None if name == "all" else "all")


class _VarsFolder:
    """group_vars/ or host_vars/, listed once: NAME{,.yml,.yaml} or every YAML file in NAME/, as Ansible
    reads them (a thousand hosts would otherwise cost four stat calls each)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            self.entries = {e.name: e.is_dir() for e in os.scandir(folder)}
        except (FileNotFoundError, NotADirectoryError):
            self.entries = {}
        except OSError as exc:
            raise InputError(f"{folder}: cannot list: {exc.strerror}") from None

    def files(self, name: str) -> list[Path]:
        files = [self.folder / f"{name}{s}" for s in YAML_SUFFIXES if self.entries.get(f"{name}{s}") is False]
        if self.entries.get(name):
            files += sorted(p for p in (self.folder / name).iterdir() if p.is_file() and p.suffix in YAML_SUFFIXES)
        return files

    def unused(self, names) -> list[tuple[Path, str]]:
        """(entry, the name it is for) of the entries that belong to none of ``names``, in name order."""
        found = []
        for entry, is_dir in sorted(self.entries.items()):
            path = self.folder / entry
            stem = entry if is_dir else path.stem if path.suffix in YAML_SUFFIXES else None
            if stem and stem not in names:
                found.append((path, stem))
        return found


def _read_vars(path: Path) -> dict:
    variables = _mapping(read_yaml(path), str(path))
    _check_settings_type(variables, str(path))
    return variables


def load_inventory(source: str | Path) -> Inventory:
    """Load ``source`` (a file, or a folder of inventory files) into an :class:`Inventory`."""
    source = Path(source)
    try:
        is_dir = source.stat() and source.is_dir()
    except FileNotFoundError:
        raise InputError(f"{source}: no such inventory file or folder") from None
    except OSError as exc:
        raise InputError(f"{source}: cannot read: {exc.strerror}") from None
    if is_dir:
        try:
            files = sorted(p for p in source.iterdir()
                           if p.is_file() and p.suffix in YAML_SUFFIXES and not p.name.startswith("."))
        except OSError as exc:
            raise InputError(f"{source}: cannot list the inventory folder: {exc.strerror}") from None
        base = source
    else:
        files, base = [source], source.parent
    reader = _Reader()
    for path in files:
        reader.read_file(path)
    warnings: list[str] = []

    group_vars, host_vars = _VarsFolder(base / "group_vars"), _VarsFolder(base / "host_vars")
    group_layers: dict[str, list[tuple[dict, dict]]] = {}
    for name, group in reader.groups.items():
        layers = [(group.vars, group.var_files)]
        for path in group_vars.files(name):
            variables = _read_vars(path)
            layers.append((variables, {k: path for k in variables}))
        group_layers[name] = layers
    for entry, stem in group_vars.unused(reader.groups):
        warnings.append(f"{entry}: group {stem} is not in the inventory; its vars are not used")

    hosts: dict[str, InventoryHost] = {}
    depths = group_depths(reader.groups)
    for host in reader.host_vars:  # inventory order, as Ansible keeps it
        inline, path = reader.host_vars[host]
        in_groups = host_groups(reader.groups, host, depths)
        layers = [layer for g in in_groups for layer in group_layers[g]]
        layers.append((inline, {k: path for k in inline}))
        for vpath in host_vars.files(host):
            variables = _read_vars(vpath)
            layers.append((variables, {k: vpath for k in variables}))
        plain, var_files, settings, settings_files = merge_layers(layers)
        groups = [g for g in in_groups if g != "all"]
        hosts[host] = InventoryHost(host, groups, plain, var_files, settings, settings_files)
    for entry, stem in host_vars.unused(hosts):
        warnings.append(f"{entry}: host {stem} is not in the inventory; its vars are not used")
    return Inventory(source, reader.groups, hosts, warnings)

