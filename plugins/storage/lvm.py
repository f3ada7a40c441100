"""LVM storage: a libvirt logical pool on clean block devices; logical volumes need device-mapper."""

from __future__ import annotations

import os
from pathlib import Path

from provision import installed, kernel
from provision.api import Remedy
from provision.checks import CheckSet
from provision.errors import SettingsError
from provision.hookspecs import hookimpl
from provision.stages.render import RenderedFile
from provision_plugins.storage.pools import host_needs, images_on, libvirt_backend, pool_file, pool_objects, uses

checks = CheckSet()
DM = kernel.Needs(config=("CONFIG_BLK_DEV_DM",), modules=("dm_mod",))
SOFTWARE = installed.Software(
    "LVM software", programs=("pvcreate", "vgcreate", "lvcreate"), pieces=(libvirt_backend("logical"),),
    remedy="apt-get install lvm2 (Debian/Ubuntu) or dnf install lvm2 libvirt-daemon-driver-storage-logical (RHEL)")


@hookimpl
def provision_settings_schema():
    from provision_plugins.storage.lvm_schema import LvmPool

    return {"storage[]": LvmPool}


@hookimpl
def provision_probe():
    return {**kernel.probe(DM), **installed.probe("storage.lvm", SOFTWARE)}


@checks.register("storage.lvm", "the LVM tools and libvirt's logical storage backend are installed, for logical pools")
def lvm_software(facts, settings):
    needed, why_not = host_needs(settings, "lvm", also=images_on(settings, "lvm"))
    return installed.software_check(facts, "storage.lvm", SOFTWARE, needed=needed, unneeded=why_not)


@checks.register("kernel.device_mapper", "the kernel has device-mapper (dm_mod), needed to activate LVM logical volumes")
def kernel_device_mapper(facts, settings):
    feature = kernel.kernel_feature(facts, DM)
    needed = uses(settings, "lvm") or images_on(settings, "lvm")
    return kernel.kernel_check(feature, what="device-mapper", needed=needed,
                               note="LVM volume groups can be created, but logical volumes cannot be activated"
                               if not feature.usable else "", remedy="modprobe dm_mod")


def device_problem(path: str, vg: str | None = None) -> str | None:
    """Why a local device cannot become a physical volume, or None: pyudev reads sysfs and
    the udev database; where udev keeps none (no udevd), ``blkid -p`` probes the superblock.
    A physical volume of the volume group ``vg`` already (the pool's own, as an earlier apply
    built it) is no problem."""
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
    if mounts := mount_points(device.device_number):
        return f"is mounted at {', '.join(mounts)}"
    if device.attributes.asint("size") == 0:
        return "is empty (size 0: no medium, or a loop device with no file attached)"
    return signature_problem(path, device.properties.get("ID_FS_TYPE"), vg)


def mount_points(dev: int) -> list[str]:
    """Where the block device ``dev`` (major:minor) is mounted, from /proc/self/mountinfo."""
    wanted = f"{os.major(dev)}:{os.minor(dev)}"
    with open("/proc/self/mountinfo") as fh:
        return [fields[4] for fields in map(str.split, fh) if fields[2] == wanted]


def signature_problem(path: str, fs: str | None, vg: str | None = None) -> str | None:
    """A filesystem, PV, RAID or swap signature on ``path`` (udev's word, else ``blkid -p``'s);
    a device blkid cannot read is a problem too, never taken for a clean one."""
    import subprocess

    if fs is None:
        probe = subprocess.run(["blkid", "-p", "-o", "value", "-s", "TYPE", path], capture_output=True, text=True)
        if probe.stderr.strip() or probe.returncode not in (0, 2):  # 2 with nothing said: no signature
            reason = probe.stderr.strip().removeprefix("blkid: ") or f"blkid exit code {probe.returncode}"
            return f"cannot be read to look for a filesystem or LVM signature ({reason})"
        fs = probe.stdout.strip() or None
    if fs == "LVM2_member" and vg:
        owner = subprocess.run(["pvs", "--noheadings", "-o", "vg_name", path], capture_output=True, text=True)
        if owner.returncode == 0 and owner.stdout.strip() == vg:
            return None  # already a physical volume of this pool's volume group
    return f"has a {fs} signature" if fs else None


@hookimpl
def provision_render(ctx):
    files, problems = [], []
    for i, pool in enumerate(ctx.settings.get("storage") or []):
        if pool["type"] != "lvm":
            continue
        if ctx.is_local:
            problems += [(("storage", i, "devices", j), f"{device} {problem}")
                         for j, device in enumerate(pool["devices"]) if (problem := device_problem(device, pool["name"]))]
        files.append(RenderedFile(pool_file(pool["name"]), ctx.render("libvirt/pool-logical.xml.j2", pool=pool)))
    if problems:
        raise SettingsError(problems)
    return files


@hookimpl
def provision_apply_objects(ctx, files):
    return pool_objects(ctx.settings, "lvm", build=True)  # pool-build makes the volume group


PACKAGES = {"debian": ("lvm2",), "redhat": ("lvm2", "libvirt-daemon-driver-storage-logical")}


@checks.remedy("storage.lvm")
def install_lvm(facts, settings, result) -> Remedy:
    from provision_plugins.libvirt import SERVICES

    return Remedy(packages=PACKAGES, services=SERVICES)


@checks.remedy("kernel.device_mapper")
def load_dm_mod(facts, settings, result) -> Remedy:
    return kernel.remedy(facts, DM, "dm_mod", packages=PACKAGES)


@hookimpl
def provision_kernel_modules(settings):
    return ["dm_mod"] if uses(settings, "lvm") or images_on(settings, "lvm") else []


provision_check_catalog, provision_checks = checks.hooks()
provision_remedies = checks.remedies_hook()
