"""LVM storage: a libvirt logical pool on clean block devices; logical volumes need device-mapper."""

from __future__ import annotations

from pathlib import Path

from provision import kernel
from provision.checks import CheckSet
from provision.errors import InputError
from provision.hookspecs import hookimpl
from provision.render import RenderedFile
from provision_plugins.storage.pools import pool_file, uses

checks = CheckSet()
DM = kernel.Needs(config=("CONFIG_BLK_DEV_DM",), modules=("dm_mod",))


@hookimpl
def provision_settings_schema():
    from provision_plugins.storage.lvm_schema import LvmPool

    return {"storage[]": LvmPool}


@hookimpl
def provision_probe():
    return kernel.probe(DM)


@checks.register("kernel.device_mapper", "the kernel has device-mapper (dm_mod), needed to activate LVM logical volumes")
def kernel_device_mapper(facts, settings):
    feature = kernel.kernel_feature(facts, DM)
    needed = uses(settings, "lvm") or (settings.get("hypervisor") or {}).get("images_type") == "lvm"
    return kernel.kernel_check(feature, what="device-mapper", needed=needed,
                               note="LVM volume groups can be created, but logical volumes cannot be activated"
                               if not feature.usable else "", remedy="modprobe dm_mod")


def device_problem(path: str) -> str | None:
    """Why a local device cannot become a physical volume, or None: pyudev reads sysfs and
    the udev database; where udev keeps none (no udevd), ``blkid -p`` probes the superblock."""
    import subprocess

    import pyudev

    try:
        device = pyudev.Devices.from_device_file(pyudev.Context(), path)
    except (pyudev.DeviceNotFoundError, ValueError, OSError) as exc:
        return f"is not a block device ({exc})"
    if device.subsystem != "block":
        return f"is not a block device (subsystem {device.subsystem})"
    partitions = [c.sys_name for c in device.children if c.device_type == "partition"]
    if partitions:
        return f"has partitions: {', '.join(partitions)}"
    holders_dir = Path(device.sys_path, "holders")
    holders = sorted(p.name for p in holders_dir.iterdir()) if holders_dir.is_dir() else []
    if holders:
        return f"is held by {', '.join(holders)}"
    fs = device.properties.get("ID_FS_TYPE")
    if fs is None:
        probe = subprocess.run(["blkid", "-p", "-o", "value", "-s", "TYPE", path], capture_output=True, text=True)
        fs = probe.stdout.strip() or None
    if fs:
        return f"has a {fs} signature"
    return None


@hookimpl
def provision_render(ctx):
    files = []
    for i, pool in enumerate(ctx.settings.get("storage") or []):
        if pool["type"] != "lvm":
            continue
        if ctx.is_local:
            for j, device in enumerate(pool["devices"]):
                if problem := device_problem(device):
                    raise InputError(f"host {ctx.host}: provision.storage[{i}].devices[{j}]: {device} {problem}")
        files.append(RenderedFile(pool_file(pool["name"]), ctx.render("libvirt/pool-logical.xml.j2", pool=pool)))
    return files


provision_check_catalog, provision_checks = checks.hooks()
