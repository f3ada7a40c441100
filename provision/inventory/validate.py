"""Validate every host of an inventory before any node is contacted."""

from __future__ import annotations

from provision.errors import InputError
from provision.hosts import HostSpec
from provision.inventory.connection import ConnectionError_, host_spec_for
from provision.inventory.model import Inventory
from provision.settings import dotted, validate_settings


def validate_inventory(inv: Inventory, hooks) -> dict[str, HostSpec]:
    """Fill in each host's settings and return its host spec; every problem at once as an InputError.

    Messages name the file, the host and the field:
    ``inventories/site.yml: host node3: provision.hypervisor.virt_type: must be one of auto, kvm, qemu (got 'kvmm')``
    """
    model = hooks.settings_model
    errors: list[str] = []
    specs: dict[str, HostSpec] = {}
    for host in inv.hosts.values():
        settings, problems = validate_settings(model, host.provision)
        for path, message in problems:
            errors.append(f"{host.file_of(path) or inv.source}: host {host.name}: provision.{dotted(path)}: {message}")
        if settings is not None:
            for path, message in hooks.validate_settings(settings):
                errors.append(f"{host.file_of(path) or inv.source}: host {host.name}: provision.{dotted(path)}: {message}")
            host.settings = settings
        try:
            specs[host.name] = host_spec_for(host)
        except ConnectionError_ as exc:
            errors.append(f"{host.var_files.get(exc.var, inv.source)}: host {host.name}: {exc}")
    if errors:
        raise InputError("invalid inventory:\n  " + "\n  ".join(errors))
    return specs
