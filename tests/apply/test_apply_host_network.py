"""The host network step over SSH, with a guarded commit: a node in its own network, mount and PID
namespaces (its own libvirtd, overlays), reached by sshd there from a controller namespace over a veth
pair. The interface that carries the controller's connection is moved into a bridge; a broken change
is rolled back by the node itself; so is a change whose controller was killed. Nothing here touches
this machine's own interfaces, routes or files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.applynode import OverlayNode, cmdline
from tests.conftest import provision_bin
from tests.testhosts import HostNetwork

pytestmark = [pytest.mark.libvirt, pytest.mark.netns]
BRIDGE = "br-provider"


@pytest.fixture
def managed(tmp_path, kvm_permissions):
    """(node, network, the node's management interface, its address); the node's default route goes
    through the controller namespace."""
    node = OverlayNode(tmp_path / "node")
    try:
        with HostNetwork("pvh", subnet="10.215.0") as net:
            address, interface = net.add_managed_node("n1", node)
            yield node, net, interface, address
    finally:
        node.stop()


def inventory(net, interface, **bridge):
    data = net.inventory_data()
    data["all"]["vars"]["provision"] = {"virt_type": "qemu",
                                        "network": {"bridges": [{"name": BRIDGE, "interfaces": [interface], **bridge}]}}
    return str(net.write_inventory(data))


def apply(net, inv, *args, timeout=180):
    argv = net.client_argv(provision_bin(), "apply", "-i", inv, "-o", "json", "--timeout", "30", *args)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return result, (json.loads(result.stdout) if result.stdout.startswith("{") else None)


def network_steps(data):
    return {s["target"]: (s["action"], s["why"]) for s in data["hosts"][0]["steps"] if s["kind"] == "host-network"}


def link(node, name):
    shown = node.run("ip", "-j", "-d", "addr", "show", "dev", name)
    return json.loads(shown.stdout)[0] if shown.returncode == 0 else None


def static_addresses(info):
    return sorted(f"{a['local']}/{a['prefixlen']}" for a in info["addr_info"] if a.get("scope") == "global")


def reachable(net, address) -> bool:
    return subprocess.run(net.client_argv("ssh", "-i", str(net.key), *net.ssh_args().split(), "-o", "ConnectTimeout=3",
                                          f"root@{address}", "true"), capture_output=True).returncode == 0


def test_the_management_interface_moves_into_a_bridge_and_stays_reachable(managed):
    node, net, interface, address = managed
    mac = link(node, interface)["address"]
    inv = inventory(net, interface)
    check, data = apply(net, inv, "--check")
    assert check.returncode == 3, check.stdout + check.stderr
    action, why = network_steps(data)[BRIDGE]
    assert action == "create" and f"{interface} carries the controller's connection" in why
    assert f"move {address}/24 from {interface}" in why and "move routes default via 10.215.0.1" in why
    assert link(node, BRIDGE) is None  # --check changed nothing

    result, data = apply(net, inv, "--confirm-timeout", "30")
    assert result.returncode == 0, result.stdout + result.stderr
    assert network_steps(data)[BRIDGE][0] == "create"
    bridge, port = link(node, BRIDGE), link(node, interface)
    assert static_addresses(bridge) == [f"{address}/24"] and static_addresses(port) == []
    assert bridge["address"] == mac and port["master"] == BRIDGE
    assert node.run("ip", "route", "show", "default").stdout.split()[:5] == ["default", "via", "10.215.0.1", "dev", BRIDGE]
    assert reachable(net, address)
    state = json.loads(node.path("/var/lib/provision/state.json").read_text())
    assert "pending" not in state and state["steps"]["host-network"] == {"bridges": {BRIDGE: {"created": True}}}
    assert not [p for p in node.processes() if b"provision-guard" in cmdline(p)]

    assert set(state["objects"]) == {f"network:{BRIDGE}"} and "/etc/netplan/60-provision.yaml" in state["files"]

    again, data = apply(net, inv)
    assert again.returncode == 0, again.stdout
    assert network_steps(data) == {BRIDGE: ("unchanged", "")}
    assert {s["action"] for s in data["hosts"][0]["steps"]} == {"unchanged"}
    verify = subprocess.run(net.client_argv(provision_bin(), "verify", "-i", inv), capture_output=True, text=True)
    assert verify.returncode == 0 and "apply.host_network" in verify.stdout, verify.stdout


def test_a_change_that_cuts_the_node_off_is_rolled_back_by_the_node(managed):
    node, net, interface, address = managed
    broken = inventory(net, interface, addresses=["10.215.0.99/24"])  # the node's address is gone after it
    start = time.monotonic()
    result, data = apply(net, broken, "--confirm-timeout", "8")
    assert result.returncode == 1, result.stdout + result.stderr
    host = data["hosts"][0]
    assert host["error"].startswith("rolled back: "), host["error"]
    assert network_steps(data)[BRIDGE][0] == "rolled back"
    assert time.monotonic() - start < 8 + 30 + 15
    assert link(node, BRIDGE) is None
    assert static_addresses(link(node, interface)) == [f"{address}/24"]
    assert reachable(net, address)
    verify = subprocess.run(net.client_argv(provision_bin(), "verify", "-i", broken), capture_output=True, text=True)
    assert verify.returncode == 1 and f"{BRIDGE} is missing" in verify.stdout, verify.stdout
    state = json.loads(node.path("/var/lib/provision/state.json").read_text())
    assert "pending" not in state and state["last_rollback"]["not_restored"] == []
    assert not node.path("/etc/netplan/60-provision.yaml").exists()  # the run's files went back too


def test_a_controller_killed_after_the_change_leaves_the_node_to_roll_back(managed):
    node, net, interface, address = managed
    inv = inventory(net, interface)
    argv = net.client_argv(provision_bin(), "apply", "-i", inv, "--confirm-timeout", "6")
    controller = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(600):
            info = link(node, interface)
            if info and info.get("master") == BRIDGE:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the bridge never took the port")
        os.killpg(controller.pid, signal.SIGKILL)  # the controller and its ssh, at once
    finally:
        controller.wait()
    for _ in range(300):
        if link(node, BRIDGE) is None and static_addresses(link(node, interface)) == [f"{address}/24"]:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the node did not roll back by itself")
    for _ in range(50):  # the guard writes its record right after restoring
        state = json.loads(node.path("/var/lib/provision/state.json").read_text())
        if "last_rollback" in state:
            break
        time.sleep(0.1)
    assert state["last_rollback"]["reason"] == "not confirmed within 6 s of the change"
    assert "pending" not in state
    assert reachable(net, address)


def test_a_reboot_before_confirmation_boots_the_old_network(managed):
    """The controller and the node's guard die together inside the confirmation window, as in a reboot:
    the host-network files are written only at confirmation, so the node's boot path (netplan generate)
    finds the old network, and the next apply undoes what was live and converges."""
    node, net, interface, address = managed
    inv = inventory(net, interface)
    argv = net.client_argv(provision_bin(), "apply", "-i", inv, "--confirm-timeout", "60")
    controller = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(600):  # the agent is done: the change is live and awaits its confirmation
            state = node.path("/var/lib/provision/state.json")
            pending = json.loads(state.read_text()).get("pending") or {} if state.exists() else {}
            if pending.get("deferred"):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the run never came to await its confirmation")
        guards = [p for p in node.processes() if b"provision-guard" in cmdline(p)]
        assert len(guards) == 1 and link(node, interface)["master"] == BRIDGE
        os.killpg(controller.pid, signal.SIGKILL)  # the controller and its ssh, at once
        for pid in guards:
            os.kill(pid, signal.SIGKILL)  # the guard dies with the node's processes
    finally:
        controller.wait()
    state = json.loads(node.path("/var/lib/provision/state.json").read_text())
    assert state["pending"]["deferred"]["files"], "the run's files wait for its confirmation"
    assert not node.path("/etc/netplan/60-provision.yaml").exists()
    generated = node.run("sh", "-c", "netplan generate && cat /run/systemd/network/* 2>/dev/null; true")
    assert generated.returncode == 0 and BRIDGE not in generated.stdout, generated.stdout + generated.stderr

    result, data = apply(net, inv, "--confirm-timeout", "30")
    assert result.returncode == 0, result.stdout + result.stderr
    assert data["hosts"][0]["recovered"], "the unconfirmed run is undone first"
    assert network_steps(data)[BRIDGE][0] == "create"
    assert BRIDGE in node.path("/etc/netplan/60-provision.yaml").read_text()
    state = json.loads(node.path("/var/lib/provision/state.json").read_text())
    assert "pending" not in state
    assert reachable(net, address)
