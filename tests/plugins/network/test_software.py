"""Network software on the node: the renderer the inventory names, nft where NAT is left to nftables."""

from provision_plugins.network.host_config import renderer_software
from provision_plugins.network.nat import nftables_software
from tests.nodes import healthy_node

NO_NETPLAN = {"programs": {"netplan": None}, "globs": {"/lib/systemd/systemd-networkd": ["/lib/systemd/systemd-networkd"],
                                                       "/usr/lib/systemd/systemd-networkd": []}}


def network(renderer="netplan", bridges=({"name": "br0"},), nat=()):
    return {"network": {"renderer": renderer, "bridges": list(bridges), "vlans": [], "nat": list(nat)}}


def test_netplan_renderer_without_netplan_fails():
    result = renderer_software(healthy_node(**{"network.renderer": NO_NETPLAN}), network())
    assert result.status == "fail"
    assert result.message == "netplan with systemd-networkd: missing netplan (the inventory needs it)"
    assert "netplan.io" in result.remedy


def test_networkd_renderer_needs_only_systemd_networkd():
    result = renderer_software(healthy_node(**{"network.renderer": NO_NETPLAN}), network("networkd"))
    assert (result.status, result.evidence) == ("pass", {"systemd-networkd": "/lib/systemd/systemd-networkd"})


def test_no_host_links_no_renderer_needed():
    result = renderer_software(healthy_node(**{"network.renderer": NO_NETPLAN}), network(bridges=()))
    assert (result.status, result.message) == (
        "skip", "not needed: no host bridges or VLANs in the inventory (netplan with systemd-networkd: missing netplan)")


def test_nftables_nat_needs_nft():
    node = healthy_node(**{"network.nftables": {"programs": {"nft": None}, "globs": {}}})
    assert nftables_software(node, network(nat=[{"name": "n", "firewall": "nftables"}])).status == "fail"
    assert nftables_software(node, network(nat=[{"name": "n", "firewall": "libvirt"}])).status == "skip"
