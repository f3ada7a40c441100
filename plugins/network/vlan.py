"""802.1Q VLANs: an id on a parent link, optionally enslaved to a defined bridge."""

from __future__ import annotations

from provision import kernel
from provision.api import Remedy
from provision.checks import CheckSet
from provision.hookspecs import hookimpl

checks = CheckSet()
VLAN = kernel.Needs(config=("CONFIG_VLAN_8021Q",), modules=("8021q",))


@hookimpl
def provision_settings_schema():
    from pydantic import Field

    from provision_plugins.network.vlan_schema import Vlan

    return {"network.vlans": (list[Vlan], Field(default_factory=list))}


@hookimpl
def provision_validate_settings(settings):
    net = settings.get("network") or {}
    bridges = {b["name"] for b in net.get("bridges") or []}
    ports = {member: b["name"] for b in net.get("bridges") or [] for member in b["interfaces"]}
    problems: list = []
    seen: dict = {}
    for i, vlan in enumerate(net.get("vlans") or []):
        if vlan["bridge"] and vlan["bridge"] not in bridges:
            known = ", ".join(sorted(bridges)) or "none"
            problems.append((("network", "vlans", i, "bridge"),
                             f"names no defined bridge {vlan['bridge']!r} (bridges: {known})"))
        elif vlan["bridge"] and ports.get(vlan["name"], vlan["bridge"]) != vlan["bridge"]:
            problems.append((("network", "vlans", i, "bridge"),
                             f"{vlan['name']} is also listed as a port of {ports[vlan['name']]}; a link has one bridge"))
        key = (vlan["link"], vlan["id"])
        if key in seen:
            problems.append((("network", "vlans", i, "id"), f"VLAN {vlan['id']} on {vlan['link']} is also network.vlans[{seen[key]}]"))
        seen.setdefault(key, i)
    return problems


@hookimpl
def provision_probe():
    return kernel.probe(VLAN)


@checks.register("kernel.vlan", "the kernel has 802.1Q VLAN support (8021q)")
def kernel_vlan(facts, settings):
    feature = kernel.kernel_feature(facts, VLAN)
    needed = bool((settings.get("network") or {}).get("vlans"))
    return kernel.kernel_check(feature, what="802.1Q VLAN", needed=needed,
                               remedy="modprobe 8021q, or use a kernel built with CONFIG_VLAN_8021Q")


@hookimpl
def provision_network_links(settings):
    return [{"name": v["name"], "kind": "vlan", "id": v["id"], "link": v["link"], "bridge": v["bridge"]}
            for v in settings["network"]["vlans"]]


@checks.remedy("kernel.vlan")
def load_8021q(facts, settings, result) -> Remedy:
    return kernel.remedy(facts, VLAN, "8021q")


@hookimpl
def provision_kernel_modules(settings):
    return ["8021q"] if (settings.get("network") or {}).get("vlans") else []


provision_check_catalog, provision_checks = checks.hooks()
provision_remedies = checks.remedies_hook()
