"""What every storage entry shares: a libvirt pool name, unique on the node, and where its XML goes."""

from __future__ import annotations

from provision.hookspecs import hookimpl

POOL_DIR = "/etc/provision/libvirt"  # the apply step defines pools, secrets and networks from here


def pool_file(name: str) -> str:
    return f"{POOL_DIR}/pool-{name}.xml"


def secret_file(name: str) -> str:
    return f"{POOL_DIR}/secret-{name}.xml"


@hookimpl
def provision_validate_settings(settings):
    """Pool names are unique on a node: libvirt has one namespace for them."""
    seen: dict[str, int] = {}
    problems = []
    for i, entry in enumerate(settings.get("storage") or []):
        if entry["name"] in seen:
            problems.append((("storage", i, "name"), f"duplicate pool name {entry['name']!r} (also storage[{seen[entry['name']]}])"))
        seen.setdefault(entry["name"], i)
    return problems


def uses(settings, kind: str) -> bool:
    """Whether the node's storage has an entry of this type."""
    return any((entry or {}).get("type") == kind for entry in settings.get("storage") or [])
