"""NAT networks: a libvirt NAT network (subnet, gateway, DHCP, outbound link), or nftables when asked."""

from __future__ import annotations

from provision import installed, kernel
from provision.api import LibvirtObject, Remedy, RenderedFile
from provision.checks import CheckSet
from provision.hookspecs import hookimpl
from provision_plugins.network.names import network_file

checks = CheckSet()
NFT = installed.Software("nftables", programs=("nft",), remedy="apt-get install nftables (Debian/Ubuntu) or dnf install nftables (RHEL)")
DNSMASQ = installed.Software("dnsmasq", programs=("dnsmasq",),
                            remedy="apt-get install dnsmasq-base (Debian/Ubuntu) or dnf install dnsmasq (RHEL)")
NF_NAT = kernel.Needs(config=("CONFIG_NF_NAT",), modules=("nf_nat",))
MASQUERADE = kernel.Needs(config=("CONFIG_NFT_MASQ", "CONFIG_NFT_NAT", "CONFIG_IP_NF_TARGET_MASQUERADE"),
                          modules=("nft_masq", "nft_nat", "nft_chain_nat", "ipt_MASQUERADE"))
NFT_FILE = "/etc/nftables.d/provision-nat.nft"


@hookimpl
def provision_settings_schema():
    from pydantic import Field

    from provision_plugins.network.nat_schema import Nat

    return {"network.nat": (list[Nat], Field(default_factory=list))}


@hookimpl
def provision_validate_settings(settings):
    from provision_plugins.network.addresses import ip_address, ip_interface, ip_network

    net = settings.get("network") or {}
    problems: list[tuple[tuple, str]] = []
    taken = [
        (ip_interface(a).network, f"network.bridges[{i}].addresses")
        for i, b in enumerate(net.get("bridges") or []) for a in b["addresses"]]
    names: dict[str, int] = {}
    bridged = {b["name"]: i for i, b in enumerate(net.get("bridges") or [])}  # each bridge's libvirt network bears its name
    for i, nat in enumerate(net.get("nat") or []):
        subnet = ip_network(nat["subnet"])
        gateway = ip_address(nat["gateway"])
        where = ("network", "nat", i)
        if gateway not in subnet or gateway in (subnet.network_address, subnet.broadcast_address):
            problems.append(((*where, "gateway"), f"{gateway} is not a host address of {subnet}"))
        if nat["dhcp"]:
            start, end = (ip_address(nat["dhcp"][k]) for k in ("start", "end"))
            for key, addr in (("start", start), ("end", end)):
                if addr not in subnet or addr in (subnet.network_address, subnet.broadcast_address):
                    problems.append(((*where, "dhcp", key), f"{addr} is outside {subnet}"))
            if start > end:
                problems.append(((*where, "dhcp"), f"start {start} is after end {end}"))
            elif start <= gateway <= end:
                problems.append(((*where, "dhcp"), f"range {start}-{end} includes the gateway {gateway}"))
        for other, label in taken:
            if subnet.version == other.version and subnet.overlaps(other):
                problems.append(((*where, "subnet"), f"{subnet} overlaps {other} ({label})"))
        taken.append((subnet, f"network.nat[{i}].subnet"))
        if nat["name"] in names:
            problems.append(((*where, "name"), f"duplicate network name {nat['name']!r} (also network.nat[{names[nat['name']]}])"))
        elif nat["name"] in bridged:
            problems.append(((*where, "name"), f"libvirt network {nat['name']!r} is also the bridged network of "
                                               f"network.bridges[{bridged[nat['name']]}]; libvirt has one namespace for networks"))
        names.setdefault(nat["name"], i)
    return problems


@hookimpl
def provision_probe():
    return {**kernel.probe(NF_NAT, MASQUERADE), **installed.probe("network.nftables", NFT),
            **installed.probe("network.dnsmasq", DNSMASQ)}


@checks.register("network.dnsmasq", "dnsmasq is installed where the inventory has NAT networks (libvirt runs it "
                                    "for their DHCP and DNS)")
def dnsmasq_software(facts, settings):
    needed = bool((settings.get("network") or {}).get("nat"))
    return installed.software_check(facts, "network.dnsmasq", DNSMASQ, needed=needed,
                                    unneeded="no NAT network in the inventory")


@checks.register("network.nftables", "nft is installed where NAT is left to nftables (firewall: nftables)")
def nftables_software(facts, settings):
    needed = any(n.get("firewall") == "nftables" for n in (settings.get("network") or {}).get("nat") or [])
    return installed.software_check(facts, "network.nftables", NFT, needed=needed,
                                    unneeded="no NAT network with firewall: nftables in the inventory")


@checks.register("kernel.nat", "the kernel has netfilter NAT (nf_nat) with nftables or iptables masquerading")
def kernel_nat(facts, settings):
    core = kernel.kernel_feature(facts, NF_NAT)
    masq = kernel.kernel_feature(facts, MASQUERADE)
    feature = core if not core.usable else masq
    if core.usable and masq.usable:
        feature = kernel.KernelFeature(core.state, f"nf_nat {core.detail}; masquerade {masq.detail}",
                                       {**core.evidence, **masq.evidence})
    needed = bool((settings.get("network") or {}).get("nat"))
    return kernel.kernel_check(feature, what="netfilter NAT", needed=needed, remedy="modprobe nf_nat nft_masq")


@hookimpl
def provision_render(ctx):
    from provision_plugins.network.addresses import ip_network

    nats = ctx.settings["network"]["nat"]
    files = []
    for nat in nats:
        subnet = ip_network(nat["subnet"])
        files.append(RenderedFile(network_file(nat["name"]),
                                  ctx.render("libvirt/network-nat.xml.j2", nat=nat, netmask=str(subnet.netmask))))
    nft = [n for n in nats if n["firewall"] == "nftables"]
    if nft:
        files.append(RenderedFile(NFT_FILE, ctx.render("nftables/nat.nft.j2", nats=nft), "0640"))
    return files


@hookimpl
def provision_apply_objects(ctx, files):
    return [LibvirtObject("network", network_file(n["name"])) for n in ctx.settings["network"]["nat"]]


@checks.remedy("network.dnsmasq")
def install_dnsmasq(facts, settings, result) -> Remedy:
    return Remedy(packages={"debian": ("dnsmasq-base",), "redhat": ("dnsmasq",)})


@checks.remedy("network.nftables")
def install_nftables(facts, settings, result) -> Remedy:
    return Remedy(packages={"debian": ("nftables",), "redhat": ("nftables",)})


@checks.remedy("kernel.nat")
def load_nat(facts, settings, result) -> Remedy:
    return kernel.remedy(facts, NF_NAT, "nf_nat")


provision_check_catalog, provision_checks = checks.hooks()
provision_remedies = checks.remedies_hook()
