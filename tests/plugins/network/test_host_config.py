"""Host network configuration: interface names survive into netplan's own output as they are."""

import yaml

from provision.inventory.select import select_nodes
from provision.plugins import default_hooks
from provision.stages.render import render_node
from tests.validators import netplan_generate

# every character an interface name may have, in the places YAML and networkd give meaning to
ODD = {"bridges": [{"name": "_br.1-x", "interfaces": ["0e_1.2-"], "addresses": ["198.51.100.7/24"], "mtu": 1500}],
       "vlans": [{"name": "v.5", "id": 5, "link": "0e_1.2-", "bridge": "_br.1-x"}]}


def rendered_netplan(tmp_path, network):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"n1": {"ansible_host": "192.0.2.9", "provision": {
        "virt_type": "qemu", "network": network}}}}}))
    hooks = default_hooks()
    node, = select_nodes(inventory=str(inventory), hooks=hooks).nodes
    files = {f.target: f.content for f in render_node(node, None, hooks=hooks)}
    return files["/etc/netplan/60-provision.yaml"]


def test_names_reach_networkd_as_they_are(tmp_path):
    text = rendered_netplan(tmp_path, ODD)
    assert yaml.safe_load(text)["network"]["bridges"]["_br.1-x"]["interfaces"] == ["0e_1.2-", "v.5"]
    result = netplan_generate(text, tmp_path / "root")
    assert result.returncode == 0, result.stderr
    units = tmp_path / "root" / "run" / "systemd" / "network"
    assert "Name=_br.1-x" in (units / "10-netplan-_br.1-x.netdev").read_text()
    assert "Id=5" in (units / "10-netplan-v.5.netdev").read_text()
    network = (units / "10-netplan-0e_1.2-.network").read_text()
    assert "VLAN=v.5" in network and "Bridge=_br.1-x" in network


def test_an_ethernet_with_nothing_to_set_is_an_empty_mapping(tmp_path):
    text = rendered_netplan(tmp_path, {"bridges": [{"name": "br0", "interfaces": ["eth1"]}]})
    assert '    "eth1": {}\n' in text
    assert yaml.safe_load(text)["network"] == {"version": 2, "renderer": "networkd", "ethernets": {"eth1": {}},
                                               "bridges": {"br0": {"interfaces": ["eth1"], "parameters": {"stp": False}}}}


def test_a_bridge_gives_its_mtu_to_its_ports_in_what_netplan_generates(tmp_path):
    """A bridge of MTU 9000 with a 1500 port passes no jumbo frame: the ports (a VLAN in it too) get 9000."""
    text = rendered_netplan(tmp_path, {"bridges": [{"name": "br0", "interfaces": ["eth1"], "mtu": 9000},
                                                   {"name": "br1", "interfaces": ["eth2"], "mtu": 9000}],
                                       "vlans": [{"name": "v5", "id": 5, "link": "eth2", "bridge": "br0"}]})
    result = netplan_generate(text, tmp_path / "root")
    assert result.returncode == 0, result.stderr
    units = tmp_path / "root" / "run" / "systemd" / "network"
    for port in ("eth1", "eth2", "v5"):
        assert "MTUBytes=9000" in (units / f"10-netplan-{port}.network").read_text(), port


def test_a_vlan_larger_than_its_parent_is_an_input_error(tmp_path):
    import pytest

    from provision.errors import InputError

    with pytest.raises(InputError) as err:
        rendered_netplan(tmp_path, {"bridges": [{"name": "br0", "interfaces": ["eth1"], "mtu": 9000},
                                                {"name": "br1", "interfaces": ["eth2"], "mtu": 1500}],
                                    "vlans": [{"name": "v5", "id": 5, "link": "eth2", "bridge": "br0"}]})
    assert "provision.network.vlans[0].bridge: br0's MTU 9000 is larger than the MTU of the VLAN's parent eth2 " \
           "(1500)" in str(err.value)
