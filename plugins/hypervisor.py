"""The hypervisor: settings (virt_type, CPU, images_type, remote libvirt), nova's [libvirt] and libvirtd.conf."""

from __future__ import annotations

from provision.hookspecs import hookimpl
from provision.render import RenderedFile

NOVA_DROP_IN = "/etc/nova/nova.conf.d/50-provision-libvirt.conf"
# images_type -> the storage entry type that must back it
IMAGES_BACKING = {"lvm": "lvm", "rbd": "rbd"}


@hookimpl
def provision_settings_schema():
    from pydantic import Field

    from provision_plugins.hypervisor_schema import HypervisorSettings  # pydantic only when an inventory is read

    return {"hypervisor": (HypervisorSettings, Field(default_factory=HypervisorSettings))}


@hookimpl
def provision_validate_settings(settings):
    """nova's rules: cpu_models only with custom (which needs one); an images_type needs its storage."""
    hv = settings.get("hypervisor") or {}
    problems = []
    if hv.get("cpu_models") and hv.get("cpu_mode") != "custom":
        problems.append((("hypervisor", "cpu_models"),
                         f"only allowed with cpu_mode custom (cpu_mode is {hv.get('cpu_mode')!r})"))
    if hv.get("cpu_mode") == "custom" and not hv.get("cpu_models"):
        problems.append((("hypervisor", "cpu_models"), "cpu_mode custom needs at least one CPU model"))
    backing = IMAGES_BACKING.get(hv.get("images_type"))
    if backing and not _storage_of(settings, backing):
        problems.append((("hypervisor", "images_type"),
                         f"images_type {hv['images_type']} needs a storage entry of type {backing}"))
    return problems


def _storage_of(settings, kind: str) -> dict | None:
    return next((s for s in settings.get("storage") or [] if s.get("type") == kind), None)


def nova_options(ctx) -> dict[str, dict[str, str]]:
    """The nova.conf sections and options this node gets, as strings."""
    hv = ctx.settings["hypervisor"]
    libvirt = {"virt_type": ctx.virt_type, "cpu_mode": ctx.cpu_mode}
    if ctx.cpu_mode == "custom":
        libvirt["cpu_models"] = ",".join(hv["cpu_models"])
    sections = {"libvirt": libvirt}
    images_type = hv["images_type"]
    if images_type != "default":
        libvirt["images_type"] = images_type
    if images_type == "lvm":
        libvirt["images_volume_group"] = _storage_of(ctx.settings, "lvm")["name"]
    if images_type == "rbd":
        rbd = _storage_of(ctx.settings, "rbd")
        libvirt.update(images_rbd_pool=rbd["pool"], images_rbd_ceph_conf=rbd["ceph_conf"],
                       rbd_user=rbd["user"], rbd_secret_uuid=str(rbd["secret_uuid"]))
        sections["DEFAULT"] = {"force_raw_images": "True"}  # RBD clones raw images; qcow2 would be copied
    return sections


@hookimpl
def provision_render(ctx):
    files = [RenderedFile(NOVA_DROP_IN, ctx.render("nova/libvirt.conf.j2", sections=nova_options(ctx)), "0640")]
    hv = ctx.settings["hypervisor"]
    if hv["remote"] in ("tcp", "tls"):
        files.append(RenderedFile("/etc/libvirt/libvirtd.conf", ctx.render("libvirt/libvirtd.conf.j2", hv=hv)))
    if hv["remote"] == "tcp":
        files.append(RenderedFile("/etc/sasl2/libvirt.conf", ctx.render("libvirt/sasl2.conf.j2")))
    return files
