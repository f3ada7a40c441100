"""The provision.compute collection with real ansible-playbook against namespace test hosts with their own
sshd (tests/testhosts.py): preflight decides as the direct engine does for the same hosts, a refused
and a hung host are unreachable without stopping the others; on apply nodes (tests/applynode.py)
check mode changes nothing, apply then a second apply reports changed false, verify passes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, VENV_BIN, provision_bin

pytestmark = [pytest.mark.netns]
INTEL = ROOT / "tests" / "fixtures" / "cpuinfo" / "intel_vtx"


def playbook(net, tasks: str, name: str = "play.yml") -> Path:
    path = net.dir / name
    path.write_text("- hosts: compute\n  gather_facts: false\n  tasks:\n" + tasks)
    return path


def ansible_playbook(net, inventory: Path, book: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    """ansible-playbook with the JSON callback: (the run, {host: [task results]})."""
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(ROOT), "ANSIBLE_HOST_KEY_CHECKING": "False",
           "ANSIBLE_PIPELINING": "True",
           "ANSIBLE_STDOUT_CALLBACK": "provision.compute.results", "ANSIBLE_TIMEOUT": "5",
           "ANSIBLE_LOCAL_TEMP": str(net.dir / "ansible-tmp")}
    run = subprocess.run(net.client_argv(str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(book), *args),
                         capture_output=True, text=True, env=env, timeout=600)
    assert "{" in run.stdout, run.stdout[-2000:] + run.stderr[-3000:]
    data = json.loads(run.stdout[run.stdout.index("{"):])
    hosts: dict[str, list] = {}
    for play in data["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                hosts.setdefault(host, []).append(result)
    return run, hosts


def untimed(decision: dict) -> dict:
    import re

    return {**decision, "reasons": [re.sub(r"[0-9.]+ ms", "N ms", r) for r in decision["reasons"]]}


def test_preflight_decides_as_the_direct_engine_and_bad_hosts_are_unreachable(net_hosts):
    net = net_hosts
    net.add_sshd_host("node1")
    net.add_sshd_host("intel1", cpuinfo=INTEL)
    net.add_refusing_host("dead1")
    net.add_hung_host("hung1")
    inventory = net.write_inventory()
    book = playbook(net, "    - provision.compute.preflight: {ignore: [all], timeout: 10}\n"
                         "    - ansible.builtin.debug: {msg: '{{ ansible_facts.provision.decision.virt_type }}'}\n")
    run, hosts = ansible_playbook(net, inventory, book)
    assert run.returncode == 4, run.stderr[-2000:]  # some hosts unreachable
    direct = subprocess.run(net.client_argv(provision_bin(), "preflight", "-i", str(inventory), "-o", "json",
                                            "--ignore", "all", "--timeout", "10"), capture_output=True, text=True)
    expected = {h["host"]: h for h in json.loads(direct.stdout)["hosts"]}
    for name in ("node1", "intel1"):
        pre, shown = hosts[name]
        assert untimed(pre["decision"]) == untimed(expected[name]["decision"])  # a kvm.run reason times its vCPU
        assert [(c["id"], c["status"]) for c in pre["checks"]] == [(c["id"], c["status"]) for c in expected[name]["checks"]]
        assert shown["msg"] == expected[name]["decision"]["virt_type"]
    assert hosts["node1"][0]["decision"]["virt_type"] == "qemu" and hosts["intel1"][0]["decision"]["virt_type"] == "kvm"
    for name in ("dead1", "hung1"):
        assert hosts[name][0].get("unreachable") is True, hosts[name]
        assert len(hosts[name]) == 1  # nothing more ran there; the others went on


@pytest.mark.libvirt
def test_apply_in_check_mode_then_for_real_then_again_and_verify(net_hosts, tmp_path, kvm_permissions):
    from tests.applynode import OverlayNode

    net = net_hosts
    node = OverlayNode(tmp_path / "node")
    try:
        net.add_node("n1", node)
        data = net.inventory_data()
        data["all"]["vars"]["provision"] = {"virt_type": "qemu"}
        inventory = net.write_inventory(data)
        book = playbook(net, "    - provision.compute.apply:\n    - provision.compute.verify:\n")

        run, hosts = ansible_playbook(net, inventory, playbook(net, "    - provision.compute.apply:\n", "apply.yml"),
                                      "--check", "--diff")
        assert run.returncode == 0, run.stdout[-3000:]
        planned = hosts["n1"][0]
        assert planned["changed"] is True
        assert {s["action"] for s in planned["report"]["steps"]} == {"create"}
        assert "+virt_type = qemu" in planned["diff"]["prepared"]
        assert not node.path("/etc/nova/nova.conf.d/50-provision-libvirt.conf").exists()

        run, hosts = ansible_playbook(net, inventory, net.dir / "apply.yml")
        assert run.returncode == 0, run.stdout[-3000:]
        assert hosts["n1"][0]["changed"] is True
        assert "virt_type = qemu" in node.path("/etc/nova/nova.conf.d/50-provision-libvirt.conf").read_text()

        run, hosts = ansible_playbook(net, inventory, book)
        assert run.returncode == 0, run.stdout[-3000:]
        again, verified = hosts["n1"]
        assert again["changed"] is False and {s["action"] for s in again["report"]["steps"]} == {"unchanged"}
        assert verified["drift"] == [] and verified["changed"] is False

        # the same through provision's command line with --engine ansible: the direct engine's reports
        for command in (["apply", "--check"], ["apply"], ["verify"]):
            runs = {e: subprocess.run(net.client_argv(provision_bin(), *command, "-i", str(inventory), "-o", "json",
                                                      "--engine", e), capture_output=True, text=True, timeout=600)
                    for e in ("direct", "ansible")}
            assert runs["ansible"].returncode == runs["direct"].returncode == 0, runs["ansible"].stderr[-2000:]
            assert untimed_json(runs["ansible"].stdout) == untimed_json(runs["direct"].stdout), command

        # the example playbook of the collection: preflight, apply in waves, verify
        run, hosts = ansible_playbook(net, inventory, ROOT / "ansible_collections" / "provision" / "compute" /
                                      "playbooks" / "compute.yml", "-e", '{"provision_ignore": ["all"]}')
        assert run.returncode == 0, run.stdout[-3000:]
        assert [r.get("changed") for r in hosts["n1"]] == [False, False, False]
    finally:
        node.stop()


def test_bad_settings_fail_the_task_naming_the_host_and_field(net_hosts):
    net = net_hosts
    net.add_sshd_host("node1")
    data = net.inventory_data()
    data["all"]["vars"]["provision"] = {"virt_type": "kvmm"}
    run, hosts = ansible_playbook(net, net.write_inventory(data), playbook(net, "    - provision.compute.preflight:\n"))
    assert run.returncode == 2
    result = hosts["node1"][0]
    assert result["failed"] is True
    assert "host node1: provision.virt_type: " in result["msg"] and "'kvmm'" in result["msg"]


def test_the_collection_builds(tmp_path):
    done = subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path),
                           str(ROOT / "ansible_collections" / "provision" / "compute")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (built,) = tmp_path.glob("provision-compute-*.tar.gz")
    with tarfile.open(built) as tar:
        names = set(tar.getnames())
    for part in ("meta/runtime.yml", "plugins/modules/run.py", "plugins/action/apply.py",
                 "plugins/plugin_utils/engine.py", "MANIFEST.json"):
        assert part in names or any(n.endswith(part) for n in names), part


def untimed_json(text: str) -> dict:
    """A JSON report without what differs between two runs of the same fleet: timings."""
    import re

    return json.loads(re.sub(r"[0-9.]+ ms", "T ms", re.sub(r'"seconds": (null|[0-9.]+)', '"seconds": 0', text)))


def test_engine_ansible_gives_the_direct_engines_report(net_hosts):
    net = net_hosts
    net.add_sshd_host("node1")
    net.add_sshd_host("intel1", cpuinfo=INTEL)
    net.add_refusing_host("dead1")
    inventory = str(net.write_inventory())
    env = {**os.environ, "ANSIBLE_TIMEOUT": "5", "ANSIBLE_LOCAL_TEMP": str(net.dir / "ansible-tmp")}
    runs = {engine: subprocess.run(net.client_argv(provision_bin(), "preflight", "-i", inventory, "-o", "json",
                                                   "--ignore", "ports.free", "--timeout", "10", "--engine", engine),
                                   capture_output=True, text=True, env=env, timeout=600)
            for engine in ("direct", "ansible")}
    assert runs["ansible"].returncode == runs["direct"].returncode == 1, runs["ansible"].stderr[-2000:]
    direct, ansible = (untimed_json(runs[e].stdout) for e in ("direct", "ansible"))
    assert [h["host"] for h in ansible["hosts"]] == ["node1", "intel1", "dead1"]
    for mine, theirs in zip(ansible["hosts"], direct["hosts"], strict=True):
        if mine["reachable"]:
            assert mine == theirs
        else:  # both say why; each in its own transport's words
            assert (theirs["host"], theirs["reachable"]) == (mine["host"], False), (mine, theirs)
            assert "refused" in mine["error"].lower() and "refused" in theirs["error"].lower(), (mine, theirs)
    assert ansible["summary"] == direct["summary"]


@pytest.mark.slow
def test_ansible_test_sanity_passes():
    """ansible-test's own sanity tests (documentation against argument specs, imports, pep8, pylint,
    yamllint, runtime metadata, ...) on the collection, in ansible-test's venvs, kept between runs.
    ansible-test bootstraps pip from a script it downloads from a host this machine cannot reach: a
    stand-in (tests/ansible/get_pip_shim.py) gives it pip from the interpreter's own ensurepip.
    PowerShell and shell lint have no file to check here."""
    import shutil

    from tests.freshnode import CACHE

    home = CACHE / "ansible-test-home"
    shim = home / ".ansible" / "test" / "cache" / "get_pip_24_2.py"
    shim.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(__file__).with_name("get_pip_shim.py"), shim)
    done = subprocess.run([str(VENV_BIN / "ansible-test"), "sanity", "--python", "3.11", "--skip-test", "pslint",
                           "--skip-test", "shellcheck"], cwd=ROOT / "ansible_collections" / "provision" / "compute",
                          env={**os.environ, "HOME": str(home)}, capture_output=True, text=True, timeout=1200)
    if done.returncode and ("No matching distribution" in done.stdout + done.stderr
                            and "Could not fetch URL" in done.stdout + done.stderr):
        pytest.skip("ansible-test cannot install its linters: PyPI cannot be reached from this machine")
    assert done.returncode == 0, "\n".join(line for line in (done.stdout + done.stderr).splitlines()
                                           if line.startswith(("ERROR", "FATAL")))[-4000:]


@pytest.mark.parametrize("name", ["web*", "a:b", "!db", "db&web", "~^w", "@hosts", "x[1:3]", "a,b"])
def test_engine_ansible_refuses_a_host_name_that_is_a_pattern_to_ansible(name):
    """--limit reads these as patterns that could select other hosts of the inventory: refused, naming the
    host, before Ansible runs."""
    from provision.engines.ansible_run import limit_for
    from provision.errors import InputError
    from provision.remote.hosts import HostSpec, Node

    nodes = [Node(HostSpec(name="n1", scheme="ansible", address="n1")), Node(HostSpec(name=name, scheme="ansible",
                                                                                      address=name))]
    with pytest.raises(InputError, match=rf"--engine ansible: host {re.escape(repr(name))}: Ansible reads its name as a "
                                         "host pattern in --limit"):
        limit_for(nodes)
    assert limit_for(nodes[:1]) == "n1"
