"""The node's own network configuration: every kind's links as netplan YAML or systemd-networkd units."""

from __future__ import annotations

from typing import Any

from provision import installed
from provision.api import NodeStep, Remedy, RenderedFile
from provision.checks import CheckSet
from provision.hookspecs import hookimpl

checks = CheckSet()
NETPLAN_FILE = "/etc/netplan/60-provision.yaml"
NETWORKD_DIR = "/etc/systemd/network"
NETWORKD = ("systemd-networkd", ("/lib/systemd/systemd-networkd", "/usr/lib/systemd/systemd-networkd"))
RENDERERS = {
    "netplan": installed.Software("netplan with systemd-networkd", programs=("netplan",), pieces=(NETWORKD,),
                                  remedy="apt-get install netplan.io (Debian/Ubuntu; it brings systemd-networkd)"),
    "networkd": installed.Software("systemd-networkd", pieces=(NETWORKD,),
                                   remedy="apt-get install systemd-networkd (Debian 13; part of systemd before) "
                                          "or dnf install systemd-networkd (RHEL, from EPEL)"),
}


@hookimpl
def provision_settings_schema():
    from typing import Literal

    from pydantic import Field

    return {"network.renderer": (Literal["netplan", "networkd"], Field(default="netplan"))}




@hookimpl
def provision_validate_settings(settings):
    """An interface is declared once across bridges, VLANs and NAT networks."""
    problems: list = []
    seen: dict = {}
    for kind, key in (("bridges", "name"), ("vlans", "name"), ("nat", "bridge")):
        for i, entry in enumerate((settings.get("network") or {}).get(kind) or []):
            name = entry[key]
            if name in seen:
                problems.append((("network", kind, i, key), f"duplicate interface {name!r} (also {seen[name]})"))
            seen.setdefault(name, f"network.{kind}[{i}]")
    return problems + _vlan_mtu_problems(settings.get("network") or {})


def _vlan_mtu_problems(net) -> list:
    """A VLAN in a bridge takes the bridge's MTU: it must not be larger than its parent's, where the
    inventory gives the parent's (the node checks the live parent otherwise)."""
    mtus = {b["name"]: b.get("mtu") for b in net.get("bridges") or []}
    for b in net.get("bridges") or []:
        for member in b.get("interfaces") or []:
            mtus.setdefault(member, b.get("mtu"))
    problems = []
    for i, vlan in enumerate(net.get("vlans") or []):
        mtu, parent = mtus.get(vlan.get("bridge")), mtus.get(vlan.get("link"))
        if mtu and parent and mtu > parent:
            problems.append((("network", "vlans", i, "bridge"),
                             f"{vlan['bridge']}'s MTU {mtu} is larger than the MTU of the VLAN's parent "
                             f"{vlan['link']} ({parent}): frames that size cannot leave through it"))
    return problems


@hookimpl
def provision_probe():
    return {**installed.probe("network.renderer", *RENDERERS.values()), **installed.probe("network.pyroute2", PYROUTE2)}


# the host network step's module runs under the node's own Python 3 and imports pyroute2 from its packages
PYROUTE2 = installed.Software("pyroute2 for the node's Python 3", pieces=(("pyroute2", (
    "/usr/lib/python3/dist-packages/pyroute2/__init__.py", "/usr/lib/python3*/site-packages/pyroute2/__init__.py",
    "/usr/lib64/python3*/site-packages/pyroute2/__init__.py")),),
    remedy="apt-get install python3-pyroute2 (Debian/Ubuntu) or dnf install python3-pyroute2 (RHEL, from EPEL)")
PYROUTE2_PACKAGES = {"debian": ("python3-pyroute2",), "redhat": ("python3-pyroute2",)}
RENDERER_PACKAGES: dict[str, dict[str, tuple[str, ...]]] = {
    "netplan": {"debian": ("netplan.io",), "redhat": ("netplan", "systemd-networkd")},
    "networkd": {"debian": ("systemd",), "redhat": ("systemd-networkd",)}}


@checks.register("network.pyroute2", "pyroute2 is installed for the node's Python 3, where the inventory has host "
                                     "bridges or VLANs (the host network step uses netlink through it)")
def pyroute2_software(facts, settings):
    net = settings.get("network") or {}
    return installed.software_check(facts, "network.pyroute2", PYROUTE2, needed=bool(net.get("bridges") or net.get("vlans")),
                                    unneeded="no host bridges or VLANs in the inventory")


@checks.remedy("network.pyroute2")
def install_pyroute2(facts, settings, result) -> Remedy:
    return Remedy(packages=PYROUTE2_PACKAGES)


@checks.remedy("network.renderer")
def install_renderer(facts, settings, result) -> Remedy:
    return Remedy(packages=RENDERER_PACKAGES[(settings.get("network") or {}).get("renderer", "netplan")])


@checks.register("network.renderer", "the inventory's network renderer (netplan or systemd-networkd) is installed")
def renderer_software(facts, settings):
    net = settings.get("network") or {}
    renderer = net.get("renderer", "netplan")
    return installed.software_check(facts, "network.renderer", RENDERERS[renderer],
                                    needed=bool(net.get("bridges") or net.get("vlans")),
                                    unneeded="no host bridges or VLANs in the inventory")


LINK_DEFAULTS: dict[str, Any] = {"interfaces": [], "addresses": [], "mtu": None, "stp": False, "id": None, "link": None,
                 "bridge": None, "vlans": []}


def plan(links: list[dict]) -> dict[str, dict]:
    """One entry per interface, merging what several links say of it (a VLAN parent that is also
    a bridge member); bridge members and VLAN parents appear as plain ethernets."""
    interfaces: dict[str, dict] = {}

    def entry(name: str) -> dict:
        defaults = {k: (v.copy() if isinstance(v, list) else v) for k, v in LINK_DEFAULTS.items()}
        return interfaces.setdefault(name, {"name": name, "kind": "ethernet", **defaults})

    for link in links:
        iface = entry(link["name"])
        iface["kind"] = link["kind"]
        iface.update({k: v for k, v in link.items() if k not in ("name", "kind") and v not in (None, [])})
        for member in link.get("interfaces") or []:
            entry(member)["bridge"] = link["name"]
        if link["kind"] == "vlan":
            entry(link["link"])["vlans"].append(link["name"])
    for iface in interfaces.values():  # a port smaller than its bridge would drop the bridge's large frames
        bridge = interfaces.get(iface["bridge"]) if iface["bridge"] else None
        if bridge and bridge["mtu"]:
            iface["mtu"] = bridge["mtu"]
    return interfaces


def netplan_sections(interfaces: dict[str, dict]) -> dict[str, list[dict]]:
    """netplan's ethernets, vlans and bridges (those that have members), a bridge with its ports."""
    sections: dict[str, list[dict]] = {"ethernets": [], "vlans": [], "bridges": []}
    for iface in interfaces.values():
        if iface["kind"] == "bridge":
            ports = sorted(n for n, i in interfaces.items() if i["bridge"] == iface["name"])
            sections["bridges"].append({**iface, "members": ports})
        else:
            sections["vlans" if iface["kind"] == "vlan" else "ethernets"].append(iface)
    return {k: v for k, v in sections.items() if v}


@hookimpl
def provision_render(ctx):
    links = ctx.hooks.network_links(ctx.settings)
    if not links:
        return []
    interfaces = plan(links)
    if ctx.settings["network"]["renderer"] == "netplan":
        text = ctx.render("netplan/provision.yaml.j2", sections=netplan_sections(interfaces))
        return [RenderedFile(NETPLAN_FILE, text, "0600")]  # netplan warns on files others can read
    files = []
    for iface in interfaces.values():
        stem = f"{NETWORKD_DIR}/60-provision-{iface['name']}"
        if iface["kind"] in ("bridge", "vlan"):
            files.append(RenderedFile(f"{stem}.netdev", ctx.render("networkd/link.netdev.j2", iface=iface)))
        files.append(RenderedFile(f"{stem}.network", ctx.render("networkd/link.network.j2", iface=iface)))
    return files


@hookimpl
def provision_apply_node_steps(ctx, files):
    """The host network, live through netlink on the node (netlink_agent.py), guarded: the node rolls it
    back by itself unless the controller confirms it over a new connection."""
    from pathlib import Path

    links = ctx.hooks.network_links(ctx.settings)
    if not links:
        return []
    keys = {"bridge": ("name", "interfaces", "addresses", "mtu", "stp"),
            "vlan": ("name", "id", "link", "mtu", "addresses", "bridge")}
    spec: dict[str, list] = {"bridges": [], "vlans": []}
    for link in links:
        if link["kind"] in keys:
            spec[link["kind"] + "s"].append({k: link.get(k) for k in keys[link["kind"]]})
    mtus = {b["name"]: b["mtu"] for b in spec["bridges"]}
    for vlan in spec["vlans"]:  # a VLAN in a bridge takes its MTU (the node refuses one above the parent's)
        vlan["mtu"] = vlan.get("mtu") or mtus.get(vlan.get("bridge"))
    if ctx.is_local:  # the agent runs under this interpreter: it finds pyroute2 where provision does
        from importlib.util import find_spec

        found = find_spec("pyroute2")
        if found and found.submodule_search_locations:
            spec["pythonpath"] = [str(Path(next(iter(found.submodule_search_locations))).parent)]
    return [NodeStep("host-network", str(Path(__file__).with_name("netlink_agent.py")), spec, guarded=True)]


provision_check_catalog, provision_checks = checks.hooks()
provision_remedies = checks.remedies_hook()
