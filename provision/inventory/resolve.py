"""One host's variables as Ansible computes them, turned into what provision reads: the connection
settings and the ``provision`` variable, templated as Ansible templates them, as plain values, each
with the file that set it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.addresses import inventory_host_name
from provision.errors import InputError, dotted
from provision.inventory.lookups import refusal, take_refused

if TYPE_CHECKING:
    from provision.inventory.model import Inventory

SETTINGS_VAR = "provision"

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


_PATHS: dict[str, Path] = {}


def origin_path(value: Any) -> Path | None:
    """The file Ansible read ``value`` from (its origin tag), or None."""
    from ansible._internal._datatag._tags import Origin

    origin = Origin.get_tag(value)
    if origin is None or not origin.path:
        return None
    path = _PATHS.get(origin.path)
    if path is None:
        path = _PATHS[origin.path] = Path(origin.path)
    return path


def native(value: Any) -> Any:
    """``value`` with Ansible's tagged types made plain (str, int, float, bool, None, dict, list)."""
    if isinstance(value, dict):
        return {native(k): native(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [native(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    for kind in (str, int, float):
        if isinstance(value, kind):
            return kind(value)
    return str(value)


def plain(value: Any, path: tuple, origins: dict[tuple, Path], render, parent: Path | None = None) -> Any:
    """``value`` as plain data, each string that may be a template (or is vaulted) rendered by ``render``,
    recording the file of each path where it differs from its parent's (:meth:`InventoryHost.file_of`
    looks up the nearest parent). Only strings that may be templates go through Ansible's templating,
    which costs more than reading the whole inventory when it walks every value. ``render(value, path)``."""
    if isinstance(value, str) and "{" not in value:
        where = origin_path(value)
        if where is not None and where is not parent:
            origins[path] = where
        return str(value)
    where = origin_path(value)
    if where is not None and where is not parent:
        origins[path] = where
    where = where or parent
    if isinstance(value, dict):
        return {str(k): plain(v, (*path, str(k)), origins, render, where) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, (*path, i), origins, render, where) for i, v in enumerate(value)]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return native(render(value, path))
    if isinstance(value, int | float):
        return native(value)
    return native(render(value, path))  # a vaulted string: opened by templating


def resolve_host(inv: Inventory, name: str) -> InventoryHost:
    from ansible.errors import AnsibleError
    from ansible.template import Templar

    try:
        inventory_host_name(name)
    except ValueError as exc:
        raise InputError(f"{inv.source}: host {name!r}: {exc} (a host's name names its folder in render --out "
                         "and heads every file rendered for it)") from None
    host = inv.manager.get_host(name)
    try:
        raw = inv.variables.get_vars(host=host, include_hostvars=False, stage="all")
    except AnsibleError as exc:
        raise InputError(f"host {name}: {' '.join(str(exc.message).split())}") from None
    except RecursionError:
        raise InputError(f"host {name}: its variables refer to themselves (a YAML alias loop)") from None
    templar = Templar(loader=inv.loader, variables=raw)

    def value_of(var: str, origins: dict[tuple, Path]) -> Any:
        # every file was measured as it was read (load.SharedLoader): merging them cannot make more
        data = raw[var]
        at: dict[str, Any] = {"path": (), "file": origin_path(data)}

        def render(value: Any, path: tuple) -> Any:
            at["path"], at["file"] = path, origin_path(value) or at["file"]
            return templar.template(value)

        def where() -> str:
            return f"{at['file'] or inv.source}: host {name}: {dotted((var, *at['path']))}"

        take_refused()
        try:
            value = plain(data, (), origins, render)
        except AnsibleError as exc:
            if refused := take_refused():  # however Ansible wrapped it: the refusal is the reason
                raise InputError(f"{where()}: {refusal(refused)}") from None
            reason = " ".join(str(exc.message).split())
            if "vault" in reason.lower() or "decrypt" in reason.lower():
                reason = f"cannot decrypt its vault value ({reason}); give --vault-password-file or --ask-vault-pass"
            raise InputError(f"{where()}: {reason}") from None
        if refused := take_refused():  # a refusal a filter swallowed (| default(...)) is still refused
            raise InputError(f"{where()}: {refusal(refused)}")
        return value

    variables, files, names = {}, {}, {}
    for canonical, spellings in CONNECTION_VARS.items():
        used = [s for s in spellings if s in raw]
        if used:
            var = used[-1]
            variables[canonical] = value_of(var, {})
            files[canonical] = origin_path(raw[var]) or inv.source
            names[canonical] = var
    provision: dict = {}
    provision_files: dict[tuple, Path] = {}
    if SETTINGS_VAR in raw:
        provision = value_of(SETTINGS_VAR, provision_files)
        if not isinstance(provision, dict | None):
            where = origin_path(raw[SETTINGS_VAR]) or inv.source
            raise InputError(f"{where}: host {name}: {SETTINGS_VAR}: must be a mapping (got {type(provision).__name__})")
    groups = [str(g) for g in raw.get("group_names", [])]
    return InventoryHost(name, groups, variables, files, names, provision or {}, provision_files,
                         implicit=bool(getattr(host, "implicit", False)))
