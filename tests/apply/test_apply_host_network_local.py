"""The host network step on a node applied locally (its own network, mount and PID namespaces): plan-time
refusals with nothing changed, MTU end to end, and a stale guarded run finished before a new apply."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
import yaml

from provision_plugins.network import netlink_agent as agent
from tests.applynode import cmdline
from tests.conftest import provision_bin

pytestmark = [pytest.mark.libvirt, pytest.mark.netns]
HAS_8021Q = agent._has_8021q()  # the node step's own test of the kernel


@pytest.fixture
def wired(node):
    """The node with eth9 (10.9.0.5/24, the default route) and its peer eth9p (10.9.0.1, the gateway)."""
    node.sh("ip link add eth9 type veth peer name eth9p && ip addr add 10.9.0.5/24 dev eth9 && "
            "ip addr add 10.9.0.1/24 dev eth9p && ip link set eth9 up && ip link set eth9p up && "
            "ip route add default via 10.9.0.1 dev eth9")
    return node


def inventory(tmp_path, bridges=(), vlans=()) -> str:
    path = tmp_path / "site.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"n1": {"ansible_connection": "local"}}, "vars": {"provision": {
        "virt_type": "qemu", "network": {"bridges": list(bridges), "vlans": list(vlans)}}}}}))
    return str(path)


def apply(node, inv, *args):
    result = node.provision("apply", "-i", inv, "-o", "json", *args)
    return result, (json.loads(result.stdout) if result.stdout.startswith("{") else None)


def network_steps(data):
    return {s["target"]: (s["action"], s["why"]) for s in data["hosts"][0]["steps"] if s["kind"] == "host-network"}


def unchanged(node):
    """Nothing of the network or the files changed."""
    assert node.run("ip", "link", "show", "br-x").returncode != 0
    assert "10.9.0.5/24" in node.run("ip", "-o", "addr", "show", "eth9").stdout
    assert not node.path("/var/lib/provision/state.json").exists() or \
        json.loads(node.path("/var/lib/provision/state.json").read_text())["files"] == {}


@pytest.mark.parametrize("case", ["missing port", "port of another bridge", "address in use"])
def test_plan_time_refusals_change_nothing(wired, tmp_path, case):
    bridge = {"name": "br-x", "interfaces": ["eth9"]}
    if case == "missing port":
        bridge["interfaces"] = ["eth7"]
        expected = "bridge port eth7 does not exist on the node"
    elif case == "port of another bridge":
        wired.sh("ip link add br-other type bridge && ip link set eth9 master br-other")
        expected = "eth9 is already a port of br-other, which provision did not make"
    else:
        bridge["addresses"] = ["10.9.0.1/24"]
        expected = "address 10.9.0.1/24 is already used on eth9p"
    result, data = apply(wired, inventory(tmp_path, [bridge]))
    assert result.returncode == 1, result.stdout + result.stderr
    assert network_steps(data)["br-x"] == ("failed", expected)
    assert data["hosts"][0]["error"].startswith("refused before any change: br-x: " + expected)
    unchanged(wired)


@pytest.mark.skipif(HAS_8021Q, reason="this kernel has 802.1Q: the refusal is for kernels without it")
def test_vlans_are_refused_on_a_kernel_without_8021q(wired, tmp_path):
    inv = inventory(tmp_path, [{"name": "br-x", "interfaces": ["eth9"]}], [{"name": "vlan100", "id": 100, "link": "eth9"}])
    result, data = apply(wired, inv)
    assert result.returncode == 1
    assert data["hosts"][0]["error"] == ("refused by preflight, nothing was changed: kernel.vlan: 802.1Q VLAN: not in "
                                         "this kernel (the inventory needs it) (apply cannot do this live: boot a kernel "
                                         "with CONFIG_VLAN_8021Q (this one: not in this kernel); loading 8021q cannot work)")
    unchanged(wired)
    # past the gate, the node's own plan refuses it too, from what the node has
    result, data = apply(wired, inv, "--ignore", "kernel.vlan")
    assert result.returncode == 1
    assert network_steps(data)["vlan100"] == (
        "failed", "VLAN vlan100 needs 802.1Q, which this node's kernel lacks (no 8021q module)")
    assert wired.run("ip", "link", "show", "vlan100").returncode != 0
    unchanged(wired)


@pytest.mark.skipif(not HAS_8021Q, reason="this kernel has no 802.1Q (8021q): VLANs cannot be made here")
def test_a_vlan_is_made_on_its_parent(wired, tmp_path):
    result, data = apply(wired, inventory(tmp_path, vlans=[{"name": "vlan100", "id": 100, "link": "eth9"}]))
    assert result.returncode == 0, result.stdout + result.stderr
    shown = json.loads(wired.run("ip", "-j", "-d", "link", "show", "vlan100").stdout)[0]
    assert shown["linkinfo"]["info_data"]["id"] == 100 and shown["link"] == "eth9"


def test_a_bridge_gives_its_ports_its_mtu_live_and_in_the_files(wired, tmp_path):
    inv = inventory(tmp_path, [{"name": "br-x", "interfaces": ["eth9"], "mtu": 9000}])
    result, data = apply(wired, inv)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "port eth9 MTU 1500, wants 9000" in network_steps(data)["br-x"][1]
    for name in ("br-x", "eth9"):
        assert json.loads(wired.run("ip", "-j", "link", "show", name).stdout)[0]["mtu"] == 9000
    netplan = yaml.safe_load(wired.path("/etc/netplan/60-provision.yaml").read_text())["network"]
    assert netplan["ethernets"]["eth9"]["mtu"] == 9000 and netplan["bridges"]["br-x"]["mtu"] == 9000
    again, data = apply(wired, inv)
    assert network_steps(data) == {"br-x": ("unchanged", "")}


def test_a_stale_guarded_run_is_finished_before_a_new_apply(wired, tmp_path):
    inv = inventory(tmp_path, [{"name": "br-x", "interfaces": ["eth9"]}])
    argv = ["nsenter", "-t", str(wired.pid), "-m", "-n", "-p", provision_bin(), "apply", "-i", inv,
            "--confirm-timeout", "600"]
    controller = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(600):
            if "master br-x" in wired.run("ip", "link", "show", "eth9").stdout:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the bridge never took the port")
        os.killpg(controller.pid, signal.SIGKILL)
    finally:
        controller.wait()
    for _ in range(100):  # the agent journals its guard right after arming it
        state = json.loads(wired.path("/var/lib/provision/state.json").read_text())
        if (state.get("pending") or {}).get("watchdog"):
            break
        time.sleep(0.05)
    assert state["pending"]["watchdog"]["timeout"] == 600
    guards = [p for p in wired.processes() if b"provision-guard" in cmdline(p)]
    assert len(guards) == 1

    result, data = apply(wired, inv)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "host-network" in data["hosts"][0]["recovered"]
    assert network_steps(data)["br-x"][0] == "create"  # undone first, then made again and confirmed
    assert not [p for p in guards if os.path.exists(f"/proc/{p}")]
    state = json.loads(wired.path("/var/lib/provision/state.json").read_text())
    assert "pending" not in state and "10.9.0.5/24" in wired.run("ip", "-o", "addr", "show", "br-x").stdout
