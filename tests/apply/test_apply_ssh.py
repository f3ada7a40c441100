"""apply over SSH: two namespace nodes, each with its own libvirtd and overlays, reached by sshd in
their namespaces from a client namespace; the agent runs on each node through ssh, and virsh there
talks to that node's own libvirtd."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.applynode import OverlayNode
from tests.conftest import provision_bin
from tests.testhosts import HostNetwork

pytestmark = [pytest.mark.libvirt, pytest.mark.netns]


def test_apply_to_two_nodes_over_ssh(tmp_path, kvm_permissions):
    nodes = {name: OverlayNode(tmp_path / name) for name in ("node1", "node2")}
    try:
        with HostNetwork("pva", subnet="10.214.0") as net:
            for name, node in nodes.items():
                net.add_node(name, node)
            data = net.inventory_data(groups={"compute": list(nodes)})
            data["all"]["vars"]["provision"] = {"virt_type": "qemu", "network": {"nat": [
                {"name": "guestnat", "bridge": "virbr7", "subnet": "192.168.177.0/24", "gateway": "192.168.177.1"}]}}
            inv = net.write_inventory(data)
            argv = net.client_argv(provision_bin(), "apply", "-i", str(inv), "-o", "json")
            first = subprocess.run(argv, capture_output=True, text=True, timeout=180)
            assert first.returncode == 0, first.stdout + first.stderr
            hosts = {h["host"]: h for h in json.loads(first.stdout)["hosts"]}
            assert set(hosts) == set(nodes)
            for name, node in nodes.items():
                steps = {(s["kind"], s["target"]): s["action"] for s in hosts[name]["steps"]}
                assert steps[("network", "guestnat")] == "create"
                assert "Active:         yes" in node.virsh("net-info", "guestnat").stdout
                assert node.path("/var/lib/provision/state.json").exists()
            second = subprocess.run(argv, capture_output=True, text=True, timeout=180)
            assert second.returncode == 0
            actions = {s["action"] for h in json.loads(second.stdout)["hosts"] for s in h["steps"]}
            assert actions == {"unchanged"}
    finally:
        for node in nodes.values():
            node.stop()


def test_a_spec_over_one_mib_travels_on_standard_input(tmp_path, kvm_permissions):
    """8,000 PCI aliases make a 1.2 MB nova drop-in: one command-line argument may hold 128 KiB, so the
    program and spec go to the node on standard input, over SSH as on the local node."""
    devices = [{"alias": f"gpu{i}", "vendor_id": "10de", "product_id": f"{i:04x}"} for i in range(8000)]
    target = "/etc/nova/nova.conf.d/55-provision-pci.conf"
    node = OverlayNode(tmp_path / "node1", libvirt=False)
    try:
        with HostNetwork("pvb", subnet="10.215.0") as net:
            net.add_node("node1", node)
            data = net.inventory_data(groups={"compute": ["node1"]})
            data["all"]["vars"]["provision"] = {"virt_type": "qemu", "pci": {"devices": devices}}
            inv = net.write_inventory(data)
            # no such devices here, and no libvirtd in this node: the gate is told to let the files through
            ignore = ("--ignore", "host.pci", "--ignore", "libvirt.daemon")
            argv = net.client_argv(provision_bin(), "apply", "-i", str(inv), "-o", "json", *ignore)
            check = subprocess.run([*argv, "--check"], capture_output=True, text=True, timeout=180)
            assert check.returncode == 3, check.stdout[-2000:] + check.stderr
            steps = {s["target"]: s["action"] for s in json.loads(check.stdout)["hosts"][0]["steps"]}
            assert steps[target] == "create"
            done = subprocess.run(argv, capture_output=True, text=True, timeout=180)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr
            written = node.path(target).read_text()
            assert len(written) > 1_000_000 and written.count("alias = ") == 8000
    finally:
        node.stop()


HELD = """
import json, sys
from provision import pipeline
from provision.remote.session import sessions

with sessions() as held:
    first = pipeline.apply(inventory=sys.argv[1], ignore=["libvirt.daemon"])
    second = pipeline.apply(inventory=sys.argv[1], ignore=["libvirt.daemon"])
    used = {host.name: [s.started, s.requests] for host, s in held.open.items()}
print(json.dumps({"codes": [first.exit_code, second.exit_code], "used": used,
                  "actions": sorted({s.action for r in second.results for s in r.steps})}))
"""


def test_an_apply_holds_one_connection_per_node(tmp_path, kvm_permissions):
    """The probe, the agent and the verification after a change are requests to one program on the node,
    over one SSH session (two applies in one block: one session, five requests); it ends with the block."""
    import sys

    node = OverlayNode(tmp_path / "node1", libvirt=False)
    try:
        with HostNetwork("pvc", subnet="10.216.0") as net:
            net.add_node("node1", node)
            data = net.inventory_data(groups={"compute": ["node1"]})
            data["all"]["vars"]["provision"] = {"virt_type": "qemu"}
            inv = net.write_inventory(data)
            done = subprocess.run(net.client_argv(sys.executable, "-c", HELD, str(inv)), capture_output=True,
                                  text=True, timeout=180)
            assert done.returncode == 0, done.stderr[-3000:]
            answer = json.loads(done.stdout)
            assert answer["codes"] == [0, 0]
            assert answer["actions"] == ["unchanged"]
            # first apply: probe, agent, verify; second: probe, agent (nothing changed, nothing to verify)
            assert answer["used"] == {"node1": [1, 5]}
            # the session program (its bootstrap reads I.readline) ended when its run closed the session
            left = node.run("sh", "-c", "for i in $(seq 20); do grep -l 'I[.]readline' /proc/[0-9]*/cmdline "
                            "2>/dev/null || exit 0; sleep 0.1; done").stdout
            assert left == "", f"a session program outlived its run on the node: {left}"
    finally:
        node.stop()
