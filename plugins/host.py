"""The node itself: is it a VM, and does it have tun, vhost-net, cgroups and an IOMMU."""

from __future__ import annotations

from provision import kernel
from provision.api import Remedy, RenderedFile
from provision.checks import CheckSet, failed, passed, warned
from provision.facts import Facts
from provision.hookspecs import hookimpl
from provision_plugins.cpu import CPU_INFO, cpu_flags

checks = CheckSet()

DMI_FIELDS = ("sys_vendor", "product_name", "bios_vendor", "board_vendor")
# (substring of a DMI field or /sys/hypervisor/type, hypervisor), first match wins
DMI_HYPERVISORS = (
    ("firecracker", "Firecracker"), ("cloud hypervisor", "Cloud Hypervisor"), ("vmware", "VMware"),
    ("microsoft corporation", "Hyper-V"), ("xen", "Xen"), ("qemu", "KVM (QEMU)"), ("kvm", "KVM"),
    ("amazon ec2", "KVM (AWS Nitro)"), ("google", "KVM (Google Compute Engine)"), ("virtualbox", "VirtualBox"),
    ("innotek", "VirtualBox"), ("parallels", "Parallels"), ("bochs", "Bochs/QEMU"), ("openstack", "KVM (OpenStack)"),
)
CGROUP_NEEDS = {"cpu", "cpuset", "memory", "io", "pids"}  # v2 names; v1 says blkio for io
V1_NAMES = {"blkio": "io"}
TUN = kernel.Needs(config=("CONFIG_TUN",), modules=("tun",))
VHOST_NET = kernel.Needs(config=("CONFIG_VHOST_NET",), modules=("vhost_net",))


@hookimpl
def provision_probe():
    ops = {f"host.dmi.{f}": {"op": "read", "path": f"/sys/class/dmi/id/{f}"} for f in DMI_FIELDS}
    return {
        **ops,
        **kernel.probe(TUN, VHOST_NET),
        "cpu.info": CPU_INFO,
        "host.hypervisor_type": {"op": "read", "path": "/sys/hypervisor/type"},
        "host.proc_xen": {"op": "exists", "path": "/proc/xen"},
        "host.detect_virt": {"op": "run", "argv": ["systemd-detect-virt"]},
        "host.tun": {"op": "stat", "path": "/dev/net/tun"},
        "host.vhost_net": {"op": "stat", "path": "/dev/vhost-net"},
        "host.cgroup2_controllers": {"op": "read", "path": "/sys/fs/cgroup/cgroup.controllers"},
        "host.mounts": {"op": "read", "path": "/proc/self/mounts"},
        "host.iommu_groups": {"op": "listdir", "path": "/sys/kernel/iommu_groups"},
        "host.cmdline": {"op": "read", "path": "/proc/cmdline"},
    }


def hypervisor_of(facts: Facts) -> tuple[str | None, dict[str, str]]:
    """The hypervisor the node runs under (``None`` on bare metal), with the evidence."""
    evidence: dict[str, str] = {}
    flags = cpu_flags(facts)
    evidence["/proc/cpuinfo hypervisor flag"] = "present" if "hypervisor" in flags else "absent"
    sources = []
    if (hv_type := facts.text("host.hypervisor_type")) is not None:
        evidence["/sys/hypervisor/type"] = hv_type.strip()
        sources.append(hv_type)
    if facts.answer("host.proc_xen").get("exists"):
        evidence["/proc/xen"] = "present"
        sources.append("xen")
    for f in DMI_FIELDS:
        if (value := facts.text(f"host.dmi.{f}")) is not None and value.strip():
            evidence[f"/sys/class/dmi/id/{f}"] = value.strip()
            sources.append(value)
    detect = facts.answer("host.detect_virt")
    if detect.get("rc") in (0, 1) and detect.get("stdout", "").strip():
        evidence["systemd-detect-virt"] = detect["stdout"].strip()
        if detect["stdout"].strip() != "none":
            sources.append(detect["stdout"])
    for text in sources:
        for needle, name in DMI_HYPERVISORS:
            if needle in text.lower():
                return name, evidence
    if "hypervisor" in flags:
        if not any(k.startswith("/sys/class/dmi") for k in evidence):
            return "an unnamed hypervisor (no DMI tables: a microVM such as Firecracker)", evidence
        return "an unnamed hypervisor", evidence
    return None, evidence


@checks.register("host.hypervisor", "whether the node is itself a VM, under what, and what that means for nested KVM")
def host_hypervisor(facts: Facts, settings):
    name, evidence = hypervisor_of(facts)
    if name is None:
        return passed("bare metal: no hypervisor detected", evidence)
    flags = cpu_flags(facts)
    if flags & {"vmx", "svm"}:
        return passed(f"a VM under {name}, with nested virtualisation exposed (vmx/svm passed through)", evidence)
    return warned(f"a VM under {name} without vmx/svm: nested KVM is not available, guests run under TCG (slow)",
                  evidence, "enable nested virtualisation on the outer host, or use bare metal for compute nodes")


def _char_device(facts: Facts, key: str) -> tuple[bool, dict]:
    st = facts.answer(key)
    return st.get("kind") == "char", facts.evidence(key)


@checks.register("host.tun", "/dev/net/tun exists, for guests' tap interfaces")
def host_tun(facts: Facts, settings):
    ok, evidence = _char_device(facts, "host.tun")
    if ok:
        return passed("/dev/net/tun is present", evidence)
    feature = kernel.kernel_feature(facts, TUN)
    evidence.update(feature.evidence)
    return failed(f"/dev/net/tun is missing (tun: {feature.detail}): guests cannot get tap NICs", evidence,
                  "modprobe tun, or mknod /dev/net/tun c 10 200")


@checks.register("host.vhost_net", "/dev/vhost-net exists, for in-kernel virtio-net acceleration")
def host_vhost_net(facts: Facts, settings):
    ok, evidence = _char_device(facts, "host.vhost_net")
    if ok:
        return passed("/dev/vhost-net is present", evidence)
    feature = kernel.kernel_feature(facts, VHOST_NET)
    evidence.update(feature.evidence)
    return warned(f"/dev/vhost-net is missing (vhost_net: {feature.detail}): guest networking falls back to "
                  "QEMU userspace virtio, slower", evidence, "modprobe vhost_net")


def cgroup_controllers(facts: Facts) -> tuple[str, set[str]]:
    """('v2'|'v1'|'none', controllers available to libvirt, v1 names mapped to v2)."""
    if (text := facts.text("host.cgroup2_controllers")) is not None:
        return "v2", set(text.split())
    mounted = set()
    for line in (facts.text("host.mounts") or "").splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] == "cgroup":
            for opt in fields[3].split(","):
                mounted.add(V1_NAMES.get(opt, opt))
    return ("v1" if mounted else "none"), mounted


@checks.register("host.cgroups", "cgroup v1 or v2 with the cpu, cpuset, memory, io (v1: blkio) and pids controllers")
def host_cgroups(facts: Facts, settings):
    version, controllers = cgroup_controllers(facts)
    evidence = {"cgroup version": version, "controllers": " ".join(sorted(controllers)) or "(none)"}
    if version == "none":
        return failed("no cgroup filesystem is mounted: libvirt cannot confine guests", evidence,
                      "mount cgroup2 on /sys/fs/cgroup")
    missing = CGROUP_NEEDS - controllers
    if missing:
        names = ", ".join(sorted(("blkio" if m == "io" and version == "v1" else m) for m in missing))
        return warned(f"cgroup {version} lacks {names}: guest resource limits for them will not apply", evidence,
                      "enable the controllers (v2: echo +io > cgroup.subtree_control; v1: mount them)")
    return passed(f"cgroup {version} with {', '.join(sorted(CGROUP_NEEDS))}", evidence)


@checks.register("host.iommu", "an IOMMU is active, for PCI passthrough and SR-IOV")
def host_iommu(facts: Facts, settings):
    groups = facts.answer("host.iommu_groups").get("names", [])
    cmdline = (facts.text("host.cmdline") or "").strip()
    evidence = {"/sys/kernel/iommu_groups": f"{len(groups)} groups", "/proc/cmdline": cmdline}
    if groups:
        return passed(f"IOMMU active ({len(groups)} groups)", evidence)
    return warned("no IOMMU groups: PCI passthrough and SR-IOV are unavailable (ordinary guests are unaffected)",
                  evidence, "enable VT-d/AMD-Vi in the firmware and boot with intel_iommu=on (Intel) or iommu=pt")


MODULES_FILE = "/etc/modules-load.d/provision.conf"


@hookimpl
def provision_kernel_modules(settings):
    return ["vhost_net"]  # every guest's virtio-net: in-kernel, else QEMU's slower userspace path


@hookimpl
def provision_render(ctx):
    """The modules every plugin's part of the plan needs at boot (provision_kernel_modules), in one file."""
    modules = ctx.hooks.kernel_modules(ctx.settings)
    return [RenderedFile(MODULES_FILE, ctx.render("modules/provision.conf.j2", modules=modules))] if modules else []


@checks.remedy("host.tun")
def load_tun(facts: Facts, settings, result) -> Remedy:
    return kernel.remedy(facts, TUN, "tun")


@checks.remedy("host.iommu")
def iommu_on_the_command_line(facts: Facts, settings, result) -> Remedy:
    return Remedy(manual="enable VT-d/AMD-Vi in the firmware, add intel_iommu=on iommu=pt (Intel) or iommu=pt (AMD) "
                         "to GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub (grub2-mkconfig on RHEL), "
                         "then reboot: the kernel command line changes only at boot")


provision_check_catalog, provision_checks = checks.hooks()
provision_remedies = checks.remedies_hook()
