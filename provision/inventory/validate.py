"""Validate the selected hosts of an inventory before any node is contacted."""

from __future__ import annotations

from provision.errors import InputError, SettingsError
from provision.inventory.connection import ConnectionError_, host_spec_for
from provision.inventory.model import Inventory, InventoryHost
from provision.remote.hosts import HostSpec
from provision.secrets import secret_file_problems
from provision.settings import validate_settings


def validate_inventory(inv: Inventory, names: list[str], hooks,
                       workers: int | None = None) -> list[tuple[InventoryHost, HostSpec]]:
    """Each host with its settings filled in, and its host spec; every problem at once as an InputError.

    Messages name the file, the host and the field:
    ``inventories/site.yml: host node3: provision.hypervisor.virt_type: must be one of auto, kvm, qemu (got 'kvmm')``
    Large inventories are read and checked by one forked worker per CPU.
    """
    from provision.parallel import fork_map

    model = hooks.settings_model

    def check(name: str) -> tuple[InventoryHost | None, list[str], HostSpec | None]:
        try:
            host = inv.host(name)
        except InputError as exc:
            return None, [str(exc)], None
        errors: list[str] = []
        settings, problems = validate_settings(model, host.provision)
        if settings is not None:
            problems = hooks.validate_settings(settings) + secret_file_problems(settings)
            host.settings = settings
            host.provision = {}  # validated into settings; not sent back from a worker
        errors += SettingsError(problems).lines(host.name, lambda path: host.file_of(path) or inv.source)
        try:
            spec = host_spec_for(host)
        except ConnectionError_ as exc:
            spec = None
            canonical = next((c for c in host.var_names if host.label(c) == exc.var), exc.var)
            errors.append(f"{host.var_files.get(canonical, inv.source)}: host {host.name}: {exc}")
        return host, errors, spec

    errors: list[str] = []
    valid: list[tuple[InventoryHost, HostSpec]] = []
    for host, problems, spec in fork_map(check, names, per_worker=250, workers=workers):
        errors += problems
        if host is not None and spec is not None and not problems:
            valid.append((host, spec))
    if errors:
        raise InputError("invalid inventory:\n  " + "\n  ".join(errors))
    return valid
