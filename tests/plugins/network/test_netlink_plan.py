"""The host network step's plan as a function of a node's live state, on recorded states for what this
machine cannot show (a NIC whose driver caps its MTU; a port of a bridge provision made earlier)."""

from provision_plugins.network import netlink_agent as agent


def link(index, kind="", master=None, mtu=1500, max_mtu=65535, mac="52:54:00:00:00:01", up=True, stp=None):
    return {"index": index, "kind": kind, "master": master, "mtu": mtu, "max_mtu": max_mtu, "mac": mac, "up": up,
            "stp": stp, "vlan_id": None, "parent": None}


def state(**links):
    return {"links": links, "addresses": {name: [] for name in links}, "routes": []}


def plan(spec, live, owned=None, management=None):
    changes, refused, wants = agent._want(spec, live, owned or {}, management)
    return changes, refused, wants


def test_a_port_whose_driver_caps_its_mtu_is_refused():
    live = state(eno1=link(2, max_mtu=1500))  # e.g. a NIC without jumbo frame support
    _, refused, _ = plan({"bridges": [{"name": "br-x", "interfaces": ["eno1"], "mtu": 9000}]}, live)
    assert refused == [{"target": "br-x", "why": "eno1's driver takes an MTU of at most 1500; the bridge wants 9000"}]


def test_a_port_moves_from_a_bridge_provision_made_and_no_longer_renders():
    live = state(eno1=link(2, master="br-old"), **{"br-old": link(3, kind="bridge", stp=False)})
    owned = {"bridges": {"br-old": {"created": True}}}
    changes, refused, _ = plan({"bridges": [{"name": "br-x", "interfaces": ["eno1"]}]}, live, owned)
    assert refused == []
    assert [(c["target"], c["action"]) for c in changes] == [("br-x", "create"), ("br-old", "remove")]


def test_inventory_addresses_are_exact_and_the_management_port_lends_its_mac():
    live = state(eno1=link(2, mac="52:54:00:aa:bb:cc"), **{"br-x": link(3, kind="bridge", stp=False)})
    live["addresses"].update({"eno1": ["192.0.2.10/24"], "br-x": ["198.51.100.1/24"]})
    live["routes"] = [{"family": 2, "dst": "default", "gateway": "192.0.2.1", "dev": "eno1", "metric": None}]
    changes, refused, wants = plan({"bridges": [{"name": "br-x", "interfaces": ["eno1"],
                                                  "addresses": ["192.0.2.10/24"]}]}, live, management="eno1")
    assert refused == []
    why = changes[0]["why"]
    assert "remove address 198.51.100.1/24" in why and "add address" not in why
    assert "eno1 carries the controller's connection" in why
    assert wants[0]["addresses"] == ["192.0.2.10/24"] and wants[0]["mac"] == "52:54:00:aa:bb:cc"
    assert wants[0]["routes"] == live["routes"]


def test_a_converged_bridge_is_unchanged_and_the_probes_are_the_default_gateways():
    live = state(eno1=link(2, master="br-x"), **{"br-x": link(3, kind="bridge", stp=False)})
    live["addresses"]["br-x"] = ["192.0.2.10/24"]
    live["routes"] = [{"family": 2, "dst": "default", "gateway": "192.0.2.1", "dev": "br-x", "metric": None},
                      {"family": 10, "dst": "default", "gateway": "2001:db8::1", "dev": "br-x", "metric": 1024}]
    changes, refused, _ = plan({"bridges": [{"name": "br-x", "interfaces": ["eno1"]}]}, live)
    assert (changes, refused) == ([{"target": "br-x", "action": "unchanged", "why": ""}], [])
    assert agent.probes(live) == [{"what": "default gateway", "address": "192.0.2.1"},
                                  {"what": "default gateway", "address": "2001:db8::1"}]
