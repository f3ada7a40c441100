"""Linux bridges: host bridges (members, addresses, MTU, STP) and a bridged libvirt network for each."""

from __future__ import annotations

from provision import kernel
from provision.api import LibvirtObject, Remedy, RenderedFile
from provision.checks import CheckSet
from provision.hookspecs import hookimpl
from provision_plugins.network.names import network_file

checks = CheckSet()
BRIDGE = kernel.Needs(config=("CONFIG_BRIDGE",), modules=("bridge",))


@hookimpl
def provision_settings_schema():
    from pydantic import Field

    from provision_plugins.network.bridge_schema import Bridge

    return {"network.bridges": (list[Bridge], Field(default_factory=list))}


@hookimpl
def provision_validate_settings(settings):
    """A port belongs to one bridge and is no bridge itself; two bridges' subnets do not overlap."""
    from provision_plugins.network.addresses import ip_interface

    bridges = (settings.get("network") or {}).get("bridges") or []
    names = {b["name"]: i for i, b in enumerate(bridges)}
    problems: list = []
    ports: dict = {}
    subnets: list = []
    for i, bridge in enumerate(bridges):
        for j, member in enumerate(bridge["interfaces"]):
            where = ("network", "bridges", i, "interfaces", j)
            if member in names:
                problems.append((where, f"{member} is a bridge (network.bridges[{names[member]}]); a bridge cannot be a port of a bridge"))
            elif member in ports:
                problems.append((where, f"{member} is already a port of {ports[member][0]} (network.bridges[{ports[member][1]}])"))
            ports.setdefault(member, (bridge["name"], i))
        for j, address in enumerate(bridge["addresses"]):
            net = ip_interface(address).network
            for other, k, label in subnets:
                if k != i and other.version == net.version and other.overlaps(net):
                    problems.append((("network", "bridges", i, "addresses", j), f"{address} overlaps {other} ({label})"))
                    break
            subnets.append((net, i, f"network.bridges[{i}].addresses[{j}]"))
    return problems


@hookimpl
def provision_probe():
    return kernel.probe(BRIDGE)


@checks.register("kernel.bridge", "the kernel has Linux bridge support (bridge)")
def kernel_bridge(facts, settings):
    feature = kernel.kernel_feature(facts, BRIDGE)
    net = settings.get("network") or {}
    return kernel.kernel_check(feature, what="Linux bridge", needed=bool(net.get("bridges") or net.get("nat")),
                               remedy="modprobe bridge")


@hookimpl
def provision_network_links(settings):
    return [{"name": b["name"], "kind": "bridge", "interfaces": b["interfaces"], "addresses": b["addresses"],
             "mtu": b["mtu"], "stp": b["stp"]} for b in settings["network"]["bridges"]]


@hookimpl
def provision_render(ctx):
    return [RenderedFile(network_file(b["name"]), ctx.render("libvirt/network-bridge.xml.j2", bridge=b))
            for b in ctx.settings["network"]["bridges"]]


@hookimpl
def provision_apply_objects(ctx, files):
    return [LibvirtObject("network", network_file(b["name"])) for b in ctx.settings["network"]["bridges"]]


@checks.remedy("kernel.bridge")
def load_bridge(facts, settings, result) -> Remedy:
    return kernel.remedy(facts, BRIDGE, "bridge")


provision_check_catalog, provision_checks = checks.hooks()
provision_remedies = checks.remedies_hook()
