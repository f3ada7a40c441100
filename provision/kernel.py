"""Is a kernel feature built in, available as a module, or absent?

Decided from the loaded modules (``/proc/modules``), ``/sys/module``, the
filesystems the kernel knows (``/proc/filesystems``), the modules installed
for the running kernel (``modules.dep``/``modules.builtin``) and the kernel
config. Pure functions over the facts the probe gathered with :data:`PROBE`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from provision.facts import Facts


@dataclass(frozen=True)
class Needs:
    """What a kernel feature is known by: config symbols, module names, filesystem names."""

    config: tuple[str, ...]
    modules: tuple[str, ...]
    filesystems: tuple[str, ...] = ()


def probe(*needs: Needs) -> dict[str, dict]:
    """Probe operations for these features. The kernel config and modules.dep are large
    (hundreds of KB on a distribution kernel), so only the lines that name them come back;
    ``keep`` lists of several plugins are merged."""
    symbols = sorted({f"{sym}=" for n in needs for sym in n.config})
    modules = sorted({f"/{m}.ko" for n in needs for m in n.modules} | {f"/{m.replace('_', '-')}.ko" for n in needs for m in n.modules})
    return {
        "kernel.modules": {"op": "read", "path": "/proc/modules"},
        "kernel.sys_module": {"op": "listdir", "path": "/sys/module"},
        "kernel.filesystems": {"op": "read", "path": "/proc/filesystems"},
        "kernel.config": {"op": "read_first", "paths": ["/proc/config.gz", "/boot/config-{release}"], "keep": symbols},
        "kernel.modules_dep": {"op": "read", "path": "/lib/modules/{release}/modules.dep", "keep": modules},
        "kernel.modules_builtin": {"op": "read", "path": "/lib/modules/{release}/modules.builtin", "keep": modules},
    }

State = Literal["loaded", "builtin", "module", "absent", "unknown"]


@dataclass(frozen=True)
class KernelFeature:
    """The verdict on one kernel feature and what it was read from."""

    state: State
    detail: str
    evidence: dict[str, str]

    @property
    def usable(self) -> bool:
        return self.state in ("loaded", "builtin", "module")


def config_symbols(facts: Facts) -> dict[str, str]:
    text = facts.text("kernel.config") or ""
    return dict(re.findall(r"^(CONFIG_\w+)=(\S+)", text, re.M))


def _module_names(text: str | None) -> set[str]:
    """Module names from modules.dep / modules.builtin lines (paths ending .ko[.xz|.zst])."""
    names = set()
    for line in (text or "").splitlines():
        path = line.split(":", 1)[0].strip()
        base = path.rsplit("/", 1)[-1]
        if ".ko" in base:
            names.add(base.split(".ko", 1)[0].replace("-", "_"))
    return names


def kernel_feature(facts: Facts, needs: Needs) -> KernelFeature:
    """Judge one feature from the facts :func:`probe` gathered for it."""
    config, modules, filesystems = needs.config, needs.modules, needs.filesystems
    loaded = {line.split()[0] for line in (facts.text("kernel.modules") or "").splitlines() if line.strip()}
    sys_module = set(facts.answer("kernel.sys_module").get("names", []))
    known_fs = {line.split()[-1] for line in (facts.text("kernel.filesystems") or "").splitlines() if line.strip()}
    symbols = config_symbols(facts)
    installed = _module_names(facts.text("kernel.modules_dep"))
    builtin_list = _module_names(facts.text("kernel.modules_builtin"))
    evidence: dict[str, str] = {}

    if hit := sorted(set(modules) & loaded):
        return KernelFeature("loaded", f"module {hit[0]} loaded", {"/proc/modules": ", ".join(hit)})
    if hit := sorted(set(filesystems) & known_fs):
        return KernelFeature("builtin", f"filesystem {hit[0]} registered", {"/proc/filesystems": ", ".join(hit)})
    for sym in config:
        if sym in symbols:
            evidence[f"kernel config {sym}"] = symbols[sym]
    if any(symbols.get(sym) == "y" for sym in config) or set(modules) & builtin_list:
        where = next((s for s in config if symbols.get(s) == "y"), "modules.builtin")
        return KernelFeature("builtin", f"built in ({where})", evidence)
    if hit := sorted(set(modules) & installed):
        evidence["modules.dep"] = ", ".join(hit)
        return KernelFeature("module", f"module {hit[0]} available, not loaded", evidence)
    if hit := sorted(set(modules) & sys_module):
        return KernelFeature("builtin", f"present in /sys/module/{hit[0]}", {"/sys/module": ", ".join(hit)})
    if any(symbols.get(sym) == "m" for sym in config):
        if facts.error("kernel.modules_dep"):
            evidence["modules.dep"] = facts.error("kernel.modules_dep") or ""
            return KernelFeature("absent", "configured as a module, but no modules are installed for this kernel", evidence)
        return KernelFeature("module", "configured as a module", evidence)
    if facts.text("kernel.config") is None:
        evidence["kernel config"] = facts.error("kernel.config") or "not gathered"
        return KernelFeature("unknown", "kernel config unreadable and no module loaded", evidence)
    for sym in config:
        evidence.setdefault(f"kernel config {sym}", "not set")
    return KernelFeature("absent", "not in this kernel", evidence)


def kernel_check(feature: KernelFeature, *, what: str, needed: bool, remedy: str, note: str = ""):
    """A check result for a kernel feature: absent fails only when the node's plan needs it."""
    from provision.results import failed, passed, warned

    suffix = f"; {note}" if note else ""
    if feature.usable:
        return passed(f"{what}: {feature.detail}{suffix}", feature.evidence)
    message = f"{what}: {feature.detail}{suffix}"
    if needed:
        return failed(message + " (the inventory needs it)", feature.evidence, remedy)
    return warned(message, feature.evidence, remedy)


KMOD = {"debian": ("kmod",), "redhat": ("kmod",)}  # modprobe: a minimal root filesystem may lack it


def remedy(facts: Facts, needs: Needs, *modules: str, packages: Mapping[str, tuple[str, ...]] | None = None):
    """The :class:`~provision.api.Remedy` for a kernel feature a check found missing: where the kernel
    may have it (its configuration unreadable), ``modules`` loaded now (with modprobe, installed if
    missing, and ``packages``, which bring what uses them); where it has not (neither built in nor a
    module of the running kernel), nothing live: the kernel to boot instead."""
    from provision.api import Remedy

    feature = kernel_feature(facts, needs)
    if feature.state == "absent":
        return Remedy(manual=f"boot a kernel with {' or '.join(needs.config or needs.modules)} (this one: {feature.detail}); "
                             f"loading {modules[0]} cannot work")
    merged = {f: KMOD[f] + tuple((packages or {}).get(f, ())) for f in KMOD}
    return Remedy(packages=merged, modules=modules)
