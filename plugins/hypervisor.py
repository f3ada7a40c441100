"""The hypervisor: settings (CPU, images_type, remote libvirt), nova's [libvirt] and libvirtd.conf."""

from __future__ import annotations

from functools import cache

from provision.checks import CheckSet, failed, passed, skipped, wanted_virt_type, warned
from provision.hookspecs import hookimpl
from provision.stages.render import RenderedFile

checks = CheckSet()
CPU_MAP = "/usr/share/libvirt/cpu_map"  # libvirt's CPU model names, on this machine (the controller)
PASSTHROUGH_REFUSED = ("libvirt refuses it for qemu (TCG) domains: \"CPU mode 'host-passthrough' for x86_64 qemu "
                       "domain on x86_64 host is not supported by hypervisor\"")

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
    problems: list[tuple[tuple, str]] = []
    if hv.get("cpu_models") and hv.get("cpu_mode") != "custom":
        problems.append((("hypervisor", "cpu_models"),
                         f"only allowed with cpu_mode custom (cpu_mode is {hv.get('cpu_mode')!r})"))
    if hv.get("cpu_mode") == "custom" and not hv.get("cpu_models"):
        problems.append((("hypervisor", "cpu_models"), "cpu_mode custom needs at least one CPU model"))
    if hv.get("cpu_mode") == "host-passthrough" and settings.get("virt_type") == "qemu":
        problems.append((("hypervisor", "cpu_mode"), "host-passthrough needs virt_type kvm; " + PASSTHROUGH_REFUSED))
    known = libvirt_cpu_models()
    for i, model in enumerate(hv.get("cpu_models") or []):
        if known and model not in known:
            import difflib

            close = difflib.get_close_matches(model, sorted(known), n=3, cutoff=0.6)
            problems.append((("hypervisor", "cpu_models", i), f"{model!r} is not a CPU model libvirt knows"
                             + (f" (did you mean {', '.join(close)}?)" if close else f" (see {CPU_MAP})")))
    backing = IMAGES_BACKING.get(hv.get("images_type") or "")
    if backing and not _storage_of(settings, backing):
        problems.append((("hypervisor", "images_type"),
                         f"images_type {hv['images_type']} needs a storage entry of type {backing}"))
    return problems


@cache
def libvirt_cpu_models() -> frozenset[str]:
    """The CPU model names in this machine's libvirt cpu_map (every architecture); empty without libvirt
    here, and then the node's own check is the judge. Read once per process, not once per host."""
    import os

    try:
        names = os.listdir(CPU_MAP)
    except OSError:
        return frozenset()
    return frozenset(n.split("_", 1)[1][:-4] for n in names if n.endswith(".xml") and "_" in n)


@hookimpl
def provision_probe():
    return {"nova.cpu_models": {"op": "qemu_cpu_models"}}


@checks.register("nova.cpu_models", "cpu_mode and each custom cpu_models entry can run on the node under its virt type "
                 "(libvirt's QEMU capabilities)")
def cpu_models_check(facts, settings):
    hv = settings.get("hypervisor") or {}
    mode, models = hv.get("cpu_mode", "auto"), hv.get("cpu_models") or []
    accel = _accel(facts, settings)
    if mode == "host-passthrough" and accel == "tcg":
        return failed("cpu_mode host-passthrough on a node that runs guests under qemu (TCG): " + PASSTHROUGH_REFUSED,
                      {"accelerator": accel}, "use cpu_mode host-model, custom or none, or a node with KVM")
    if mode not in ("custom", "host-model"):
        return skipped(f"cpu_mode {mode}: no custom CPU model to check", {"accelerator": accel})
    ans = facts.answer("nova.cpu_models")
    if "error" in ans:
        return failed(f"cannot check the CPU models: {ans['error']}", facts.evidence("nova.cpu_models"),
                      "start libvirtd on the node once, so it writes its QEMU capabilities")
    if mode == "host-model":
        return host_model_check(ans, accel)
    known = ans.get("models", {}).get(accel, {})
    evidence = {"capabilities": ans.get("path", ""), "accelerator": accel}
    problems = []
    for model in models:
        if model not in known:
            problems.append(f"{model} is not known to the node's QEMU")
        elif known[model]:
            problems.append(f"{model} is not usable under {accel}: the node lacks {', '.join(known[model])}")
    if problems:
        return failed("; ".join(problems), evidence, "choose a model the node can run (virsh domcapabilities lists them)")
    return passed(f"{', '.join(models)} usable under {accel}", evidence)


def host_model_check(ans: dict, accel: str):
    """host-model needs libvirt's host-model CPU for the accelerator. Under TCG it is an emulated CPU:
    the features the node's KVM host-model has and TCG's lacks are dropped for guests (a warning)."""
    hosts = ans.get("host_model", {})
    evidence = {"capabilities": ans.get("path", ""), "accelerator": accel}
    if accel not in hosts:
        return failed(f"cpu_mode host-model: libvirt reports no host-model CPU for {accel} on this node", evidence,
                      "use cpu_mode custom with a model the node can run, or none")
    if accel == "tcg" and "kvm" in hosts:
        # kvm-*, kvmclock*: KVM's paravirtual interfaces, not features of the CPU; they exist only under KVM
        dropped = sorted(f for f in set(hosts["kvm"]) - set(hosts["tcg"]) if not f.startswith("kvm"))
        if dropped:
            shown = ", ".join(dropped[:12]) + (f" and {len(dropped) - 12} more" if len(dropped) > 12 else "")
            evidence["dropped under tcg"] = ", ".join(dropped)
            return warned(f"cpu_mode host-model under qemu (TCG): guests get libvirt's emulated host CPU, without "
                          f"{len(dropped)} features of this node's CPU ({shown})", evidence,
                          "expected under software emulation; use a node with KVM where guests need them")
    return passed(f"cpu_mode host-model: libvirt has a host-model CPU for {accel} "
                  f"({len(hosts[accel])} features on)", evidence)


def _accel(facts, settings) -> str:
    """The accelerator guests will run under: the pinned virt_type, else what the node decides."""
    wanted = wanted_virt_type(settings)
    if wanted != "auto":
        return "kvm" if wanted == "kvm" else "tcg"
    from provision_plugins.kvm import provision_virt_decision  # the built-in decision, on the same facts

    return "kvm" if provision_virt_decision(facts, settings).virt_type == "kvm" else "tcg"


provision_check_catalog, provision_checks = checks.hooks()


def _storage_of(settings, kind: str) -> dict | None:
    return next((s for s in settings.get("storage") or [] if s.get("type") == kind), None)


def _backing(settings, kind: str) -> dict:
    """The storage entry an images_type renders from: validated to exist (provision_validate_settings)."""
    entry = _storage_of(settings, kind)
    if entry is None:
        from provision.errors import SettingsError

        raise SettingsError([(("hypervisor", "images_type"), f"images_type {kind} needs a {kind} storage entry")])
    return entry


def nova_options(ctx) -> dict[str, dict[str, str]]:
    """The nova.conf sections and options this node gets, as strings."""
    hv = ctx.settings["hypervisor"]
    cpu_mode = hv["cpu_mode"] if hv["cpu_mode"] != "auto" else ctx.decided_cpu_mode
    libvirt = {"virt_type": ctx.virt_type, "cpu_mode": cpu_mode}
    if cpu_mode == "custom":
        libvirt["cpu_models"] = ",".join(hv["cpu_models"])
    sections = {"libvirt": libvirt}
    images_type = hv["images_type"]
    if images_type != "default":
        libvirt["images_type"] = images_type
    if images_type == "lvm":
        libvirt["images_volume_group"] = _backing(ctx.settings, "lvm")["name"]
    if images_type == "rbd":
        rbd = _backing(ctx.settings, "rbd")
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
