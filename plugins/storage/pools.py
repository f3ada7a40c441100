"""What every storage entry shares: a libvirt pool name, unique on the node, and where its XML goes."""

from __future__ import annotations

from provision.api import LIBVIRT_DIR, LibvirtObject
from provision.hookspecs import hookimpl


def pool_file(name: str) -> str:
    return f"{LIBVIRT_DIR}/pool-{name}.xml"


def secret_file(name: str) -> str:
    return f"{LIBVIRT_DIR}/secret-{name}.xml"


def entries(settings, kind: str) -> list:
    """The node's storage entries of one type."""
    return [s for s in settings.get("storage") or [] if s["type"] == kind]


def pool_objects(settings, kind: str, *, build: bool = False) -> list[LibvirtObject]:
    """The libvirt pool of each storage entry of one type (their XML is at :func:`pool_file`)."""
    return [LibvirtObject("pool", pool_file(p["name"]), build=build) for p in entries(settings, kind)]


FOLDER_KEYS = ("mountpoint", "path")  # an entry's folder that its pool mounts on or takes over


@hookimpl
def provision_validate_settings(settings):
    """Pool names are unique on a node: libvirt has one namespace for them. No pool's folder is another's,
    or inside another's: one would mount over, or fill, the other."""
    from provision.fields import nested_folders

    seen: dict[str, int] = {}
    problems = []
    folders: list[tuple[tuple, str]] = []
    for i, entry in enumerate(settings.get("storage") or []):
        if entry["name"] in seen:
            problems.append((("storage", i, "name"), f"duplicate pool name {entry['name']!r} (also storage[{seen[entry['name']]}])"))
        seen.setdefault(entry["name"], i)
        folders += [(("storage", i, k), entry[k]) for k in FOLDER_KEYS if isinstance(entry.get(k), str)]
    for outer, inner in nested_folders([path for _, path in folders]):
        (o_path, o_value), (i_path, i_value) = folders[outer], folders[inner]
        where = "is the same folder as" if i_value == o_value else "is inside"
        problems.append((i_path, f"{i_value} {where} storage[{o_path[1]}].{o_path[2]} ({o_value}), another pool's folder"))
    return problems


def uses(settings, kind: str) -> bool:
    """Whether the node's storage has an entry of this type."""
    return any((entry or {}).get("type") == kind for entry in settings.get("storage") or [])


def images_on(settings, kind: str) -> bool:
    """Whether nova keeps its instances' disks on this storage type (hypervisor.images_type)."""
    return (settings.get("hypervisor") or {}).get("images_type") == kind


# where distributions put libvirt's loadable storage backends: Debian/Ubuntu, then RHEL/Fedora/SUSE
BACKEND_DIRS = ("/usr/lib/*/libvirt/storage-backend", "/usr/lib64/libvirt/storage-backend")


def libvirt_backend(name: str) -> tuple[str, tuple[str, ...]]:
    """libvirt's storage backend ``name`` as a piece of :class:`provision.installed.Software`."""
    return f"libvirt_storage_backend_{name}.so", tuple(f"{d}/libvirt_storage_backend_{name}.so" for d in BACKEND_DIRS)


def host_needs(settings, kind: str, *, also: bool = False) -> tuple[bool, str]:
    """Whether the host itself needs a storage type's software (an entry of that type, or ``also``),
    and if not, why: with ``libvirt: container`` the container image brings it."""
    if not (uses(settings, kind) or also):
        return False, f"no {kind} storage in the inventory"
    if (settings.get("hypervisor") or {}).get("libvirt") == "container":
        return False, "libvirt runs in a container, whose image brings it"
    return True, ""


def software_with_qemu_driver(facts, key: str, software, driver: str, *, needed: bool, unneeded: str):
    """:func:`provision.installed.software_check` for a storage type whose disks QEMU opens itself
    (rbd, iscsi-direct): QEMU's block driver for them counts as part of the software."""
    from provision import installed
    from provision_plugins.qemu import block_driver

    if "error" in facts.answer(key):
        return installed.software_check(facts, key, software, needed=needed, unneeded=unneeded)
    missing, evidence = installed.found(facts, key, software)
    has_driver, evidence[f"QEMU {driver} driver"] = block_driver(facts, driver)
    if not has_driver:
        missing.append(f"QEMU's {driver} block driver")
    return installed.verdict(software, missing, evidence, needed=needed, unneeded=unneeded)
