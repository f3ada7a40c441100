"""Fleet runs over SSH against real test hosts: sshd in network namespaces the test makes and removes."""

import json
import subprocess

import pytest

from tests.conftest import provision_bin
from tests.nodes import CPUINFO
from tests.testhosts import HostNetwork

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module")
def fleet(kvm_permissions):
    with HostNetwork("pvf") as net:
        net.add_sshd_host("node1")
        net.add_sshd_host("intel1", cpuinfo=CPUINFO / "intel_vtx")
        net.add_refusing_host("dead1")
        net.add_hung_host("hung1")
        yield net
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "pvf-" not in listed, "the test network was not removed"


def run_preflight(net, inventory, *args):
    proc = subprocess.run(net.client_argv(provision_bin(), "preflight", "-i", str(inventory), "-o", "json", *args),
                          capture_output=True, text=True, timeout=120)
    return proc, json.loads(proc.stdout) if proc.stdout else None


def test_fleet_decides_per_node_and_cuts_off_dead_and_hung_ones(fleet):
    proc, data = run_preflight(fleet, fleet.write_inventory(), "--forks", "4", "--timeout", "4")
    hosts = {h["host"]: h for h in data["hosts"]}
    assert list(hosts) == ["node1", "intel1", "dead1", "hung1"]
    assert hosts["node1"]["reachable"] and hosts["intel1"]["reachable"]
    # the namespace host with an Intel VT-x /proc/cpuinfo sees a KVM host where this machine's /dev/kvm runs a
    # vCPU (it does here, and on a real KVM host); the plain one decides as this machine does
    local = json.loads(subprocess.run([provision_bin(), "preflight", "-o", "json"], capture_output=True,
                                      text=True).stdout)["hosts"][0]
    vcpu_runs = next(c for c in local["checks"] if c["id"] == "kvm.run")["status"] == "pass"
    assert hosts["intel1"]["decision"]["virt_type"] == ("kvm" if vcpu_runs else "qemu")
    assert hosts["node1"]["decision"]["virt_type"] == local["decision"]["virt_type"]
    assert hosts["dead1"]["reachable"] is False and "Connection refused" in hosts["dead1"]["error"]
    assert hosts["hung1"]["reachable"] is False
    assert "banner exchange" in hosts["hung1"]["error"] or "no answer within 4 s" in hosts["hung1"]["error"]
    assert data["summary"]["fail"] >= 2
    assert proc.returncode == 1


def test_pinned_kvm_fails_on_a_node_that_cannot(fleet):
    inv = fleet.write_inventory(fleet.inventory_data(
        groups={"compute": ["node1", "intel1"]},
        host_vars={"node1": {"provision": {"virt_type": "kvm"}},
                   "intel1": {"provision": {"virt_type": "kvm"}}}), name="pinned.yml")
    proc, data = run_preflight(fleet, inv, "--ignore", "all")
    hosts = {h["host"]: h for h in data["hosts"]}
    cpu = {h: next(c for c in hosts[h]["checks"] if c["id"] == "cpu.virt_extensions") for h in hosts}
    assert cpu["intel1"]["status"] == "pass"
    assert cpu["node1"]["status"] == "warn"  # failed, but --ignore all turned it into a warning
    assert cpu["node1"]["message"].endswith("pins virt_type kvm (failure ignored by --ignore)")
    assert "the inventory pins virt_type kvm, which this node cannot run" in hosts["node1"]["decision"]["reasons"]
    proc, data = run_preflight(fleet, inv, "-l", "node1")
    assert [h["host"] for h in data["hosts"]] == ["node1"] and proc.returncode == 1


def test_the_inventorys_python_interpreter_is_used_on_the_node(fleet):
    inv = fleet.write_inventory(fleet.inventory_data(
        groups={"compute": ["node1", "intel1"]},
        host_vars={"node1": {"ansible_python_interpreter": "/opt/nowhere/python3"},
                   "intel1": {"ansible_python_interpreter": "/usr/bin/python3"}}), name="interpreters.yml")
    proc, data = run_preflight(fleet, inv)
    hosts = {h["host"]: h for h in data["hosts"]}
    assert hosts["intel1"]["reachable"] and hosts["intel1"]["decision"]["virt_type"] == "kvm"
    assert hosts["node1"]["reachable"] is False
    assert hosts["node1"]["error"].startswith("no Python on the node (looked for /opt/nowhere/python3): ")


def test_containerised_libvirt_fails_where_a_host_libvirtd_runs(fleet, libvirtd):
    inv = fleet.write_inventory(fleet.inventory_data(
        groups={"compute": ["node1"]},
        host_vars={"node1": {"provision": {"hypervisor": {"libvirt": "container"}}}}), name="kolla.yml")
    proc, data = run_preflight(fleet, inv)
    check = next(c for c in data["hosts"][0]["checks"] if c["id"] == "libvirt.daemon")
    assert check["status"] == "fail"
    assert "libvirtd runs on the host, but the inventory says libvirt runs in a container" in check["message"]


def test_summary_table_lists_every_node(fleet):
    proc = subprocess.run(net_argv := fleet.client_argv(provision_bin(), "preflight", "-i", str(fleet.write_inventory()),
                                                        "--timeout", "3"), capture_output=True, text=True)
    assert net_argv
    for name in ("node1", "intel1", "dead1", "hung1"):
        assert name in proc.stdout
    assert "preflight summary" in proc.stdout and "unreachable" in proc.stdout


def test_shell_syntax_in_ssh_options_reaches_ssh_as_data(fleet):
    """ssh runs from an argument vector: $(...) and ; inside an option's value run nothing on the controller,
    and the node is still reached with the inventory's options."""
    marker = fleet.dir / "marker"
    env = f'PROVISION_X="$(touch {marker}); touch {marker}"'
    args = f"-o 'SetEnv={env}' -o 'SendEnv=`touch {marker}`'"
    inv = fleet.write_inventory(fleet.inventory_data(
        groups={"compute": ["node1"]}, host_vars={"node1": {"ansible_ssh_extra_args": args}}), name="args.yml")
    proc, data = run_preflight(fleet, inv, "-l", "node1")
    assert data["hosts"][0]["reachable"], data["hosts"][0].get("error")
    assert not marker.exists()
