"""Validate every host of an inventory before any node is contacted."""

from __future__ import annotations

from functools import partial

from provision.errors import InputError, SettingsError
from provision.hosts import HostSpec
from provision.inventory.connection import ConnectionError_, host_spec_for
from provision.inventory.model import Inventory, InventoryHost
from provision.secrets import secret_file_problems
from provision.settings import validate_settings


def validate_inventory(inv: Inventory, hooks, workers: int | None = None) -> dict[str, HostSpec]:
    """Fill in each host's settings and return its host spec; every problem at once as an InputError.

    Messages name the file, the host and the field:
    ``inventories/site.yml: host node3: provision.hypervisor.virt_type: must be one of auto, kvm, qemu (got 'kvmm')``
    Large inventories are checked by one forked worker per CPU.
    """
    from provision.parallel import fork_map

    model = hooks.settings_model

    def check(host: InventoryHost) -> tuple[dict | None, list[str], HostSpec | None]:
        errors: list[str] = []
        settings, problems = validate_settings(model, host.provision)
        if settings is not None:
            problems = hooks.validate_settings(settings) + secret_file_problems(settings)
        errors += SettingsError(problems).lines(host.name, partial(inv.file_of, host.name))
        try:
            spec = host_spec_for(host)
        except ConnectionError_ as exc:
            spec = None
            errors.append(f"{host.var_files.get(exc.var, inv.source)}: host {host.name}: {exc}")
        return settings, errors, spec

    hosts = list(inv.hosts.values())
    errors: list[str] = []
    specs: dict[str, HostSpec] = {}
    for host, (settings, problems, spec) in zip(hosts, fork_map(check, hosts, per_worker=250, workers=workers)):
        errors += problems
        if settings is not None:
            host.settings = settings
        if spec is not None:
            specs[host.name] = spec
    if errors:
        raise InputError("invalid inventory:\n  " + "\n  ".join(errors))
    return specs
