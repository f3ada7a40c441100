"""``provision preflight`` end to end: in-process, as the installed command, and in mount namespaces."""

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import provision_bin
from tests.nodes import CPUINFO

DEMO_ENV = {"PROVISION_PLUGINS": "tests.fixture_plugins.demo_checks", "PROVISION_DISABLE_PLUGIN_AUTOLOAD": "1"}
STATUSES = {"pass", "warn", "fail", "skip"}


def machine_can_run_kvm() -> bool:
    """What the decision must be here, judged independently of provision's code."""
    flags = open("/proc/cpuinfo").read()
    return bool(re.search(r"^flags\s*:.*\b(vmx|svm)\b", flags, re.M)) and os.path.exists("/dev/kvm")


def test_json_follows_the_contract(cli, kvm_permissions):
    result = cli("preflight", "-o", "json")
    data = json.loads(result.stdout)
    assert data["schema"] == "provision.preflight/1"
    (host,) = data["hosts"]
    assert host["host"] == "localhost" and host["reachable"] is True
    assert set(host["decision"]) >= {"virt_type", "cpu_mode", "reasons"}
    assert host["decision"]["virt_type"] in ("kvm", "qemu")
    for check in host["checks"]:
        assert set(check) == {"id", "status", "message", "evidence", "remedy"}
        assert check["status"] in STATUSES
        if check["status"] in ("warn", "fail"):
            assert check["remedy"], f"{check['id']} does not pass and names no remedy"
    counted = {s: sum(c["status"] == s for c in host["checks"]) for s in STATUSES}
    assert data["summary"] == counted
    assert result.exit_code == (1 if counted["fail"] else 0)


def test_installed_cli_decides_on_this_machine(kvm_permissions):
    proc = subprocess.run([provision_bin(), "preflight", "-o", "json"], capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stderr
    decision = json.loads(proc.stdout)["hosts"][0]["decision"]
    expected = "kvm" if machine_can_run_kvm() else "qemu"
    assert decision["virt_type"] == expected, decision
    if expected == "qemu" and os.path.exists("/dev/kvm"):
        # this machine: /dev/kvm answers (PVM) but the CPU shows no vmx/svm
        assert any("stock guests hang there" in r for r in decision["reasons"]), decision["reasons"]


def in_mount_namespace(*binds: tuple[str, str], args=("preflight", "-o", "json")):
    """Run the installed CLI in a private mount namespace with files bind-mounted over real paths."""
    mounts = " && ".join(f"mount --bind {src} {dst}" for src, dst in binds)
    script = f'{mounts} && exec "$0" "$@"'
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, provision_bin(), *args],
                          capture_output=True, text=True)


@pytest.mark.skipif(not os.path.exists("/dev/kvm"), reason="the kvm outcome needs a /dev/kvm that answers")
def test_intel_vtx_cpuinfo_with_a_working_dev_kvm_decides_kvm(kvm_permissions):
    proc = in_mount_namespace((str(CPUINFO / "intel_vtx"), "/proc/cpuinfo"))
    host = json.loads(proc.stdout)["hosts"][0]
    assert host["decision"]["virt_type"] == "kvm", host["decision"]
    assert host["decision"]["cpu_mode"] == "host-model"
    cpu = next(c for c in host["checks"] if c["id"] == "cpu.virt_extensions")
    assert cpu["status"] == "pass" and cpu["message"] == "Intel VT-x (vmx) present"


def test_dev_null_over_dev_kvm_decides_qemu(kvm_permissions):
    binds = [(str(CPUINFO / "intel_vtx"), "/proc/cpuinfo")]
    if os.path.exists("/dev/kvm"):
        binds.append(("/dev/null", "/dev/kvm"))
    proc = in_mount_namespace(*binds)
    host = json.loads(proc.stdout)["hosts"][0]
    assert host["decision"]["virt_type"] == "qemu"
    api = next(c for c in host["checks"] if c["id"] == "kvm.api")
    assert api["status"] == "warn"
    assert "KVM_GET_API_VERSION failed" in api["message"] or "cannot open /dev/kvm" in api["message"]


def test_no_flags_cpuinfo_decides_qemu_and_warns(kvm_permissions):
    proc = in_mount_namespace((str(CPUINFO / "vm_noflags"), "/proc/cpuinfo"))
    host = json.loads(proc.stdout)["hosts"][0]
    assert host["decision"]["virt_type"] == "qemu"
    cpu = next(c for c in host["checks"] if c["id"] == "cpu.virt_extensions")
    assert cpu["status"] == "warn"


def test_failing_check_exits_1_and_ignore_turns_it_into_a_warning(cli):
    result = cli("preflight", "-o", "json", env=DEMO_ENV)
    demo = next(c for c in json.loads(result.stdout)["hosts"][0]["checks"] if c["id"] == "demo.fails")
    assert demo["status"] == "fail" and result.exit_code == 1
    assert demo["evidence"] == {"/etc/hostname": open("/etc/hostname").read().strip()}
    ignored = cli("preflight", "-o", "json", "--ignore", "demo.fails", "--ignore", "resources.disk", env=DEMO_ENV)
    demo = next(c for c in json.loads(ignored.stdout)["hosts"][0]["checks"] if c["id"] == "demo.fails")
    assert demo["status"] == "warn"
    assert demo["message"] == "demo failure (failure ignored by --ignore)"
    failing = [c for c in json.loads(ignored.stdout)["hosts"][0]["checks"] if c["status"] == "fail"]
    assert ignored.exit_code == (1 if failing else 0)


def test_fail_on_warn(cli):
    result = cli("preflight", "-o", "json", "--ignore", "all", "--fail-on", "warn", env=DEMO_ENV)
    assert result.exit_code == 0  # every check ignored: nothing counts
    result = cli("preflight", "-o", "json", "--ignore", "demo.fails", "--fail-on", "warn", env=DEMO_ENV)
    assert result.exit_code == 1  # demo.warns still warns


def test_unknown_ignore_id_is_exit_2_listing_the_known_ones(cli):
    result = cli("preflight", "--ignore", "kvm.apii")
    assert result.exit_code == 2
    assert "provision: error: --ignore: unknown check id kvm.apii; known ids: ceph.reachable, cpu.virt_extensions" in result.stderr
    assert "Traceback" not in result.output


def test_bad_host_spec_is_exit_2(cli):
    result = cli("preflight", "-H", "node1")
    assert result.exit_code == 2
    assert "host spec 'node1': expected SCHEME://" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["-H", "ftp://node1"], "host spec 'ftp://node1': unknown scheme 'ftp'; use one of"),
    (["-H", "ssh://"], "host spec 'ssh://': names no host"),
    (["-l", "nothere"], "--limit 'nothere' matches no host; without -i the hosts are: localhost"),
    (["-H", "ssh://n1", "-i", "inventories/example"], "use either --inventory/-i or --host/-H, not both"),
])
def test_nodes_named_wrongly_are_exit_2(cli, args, message):
    result = cli("preflight", *args)
    assert result.exit_code == 2 and f"provision: error: {message}" in result.stderr


def test_unreachable_node_counts_as_a_failure(cli):
    result = cli("preflight", "-o", "json", "-H", "ssh://nobody@127.0.0.1:1", "--timeout", "5")
    data = json.loads(result.stdout)
    host = data["hosts"][0]
    assert host["reachable"] is False and host["decision"] is None
    assert "Connection refused" in host["error"]
    assert data["summary"]["fail"] == 1 and result.exit_code == 1


def test_junit_has_one_testcase_per_check(cli):
    result = cli("preflight", "-o", "junit", env=DEMO_ENV)
    suite = ET.fromstring(result.stdout).find("testsuite")
    cases = suite.findall("testcase")
    ids = [c.get("name") for c in cases]
    assert "demo.fails" in ids and "kvm.api" in ids and len(ids) == len(set(ids))
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert "demo.fails" in failed
    assert suite.get("failures") == str(len(failed))


def test_table_has_no_colour_codes_when_piped():
    proc = subprocess.run([provision_bin(), "preflight"], capture_output=True, text=True)
    assert "\x1b[" not in proc.stdout
    assert "cpu.virt_extensions" in proc.stdout and "virt_type" in proc.stdout


def test_checks_and_plugins_listings(cli):
    checks = cli("checks").stdout
    for check_id in ("cpu.virt_extensions", "kvm.device", "kvm.api", "kvm.module", "host.hypervisor", "host.tun",
                     "host.vhost_net", "host.cgroups", "host.iommu", "qemu.binary", "qemu.version", "libvirt.daemon",
                     "libvirt.version", "kernel.bridge", "kernel.vlan", "kernel.nat", "kernel.device_mapper",
                     "kernel.nfs", "kernel.iscsi", "kernel.rbd", "network.dnsmasq", "network.pyroute2", "time.sync", "resources.memory", "resources.disk",
                     "ports.free", "kvm.run", "kvm.boot", "nova.cpu_models", "host.pci"):
        assert re.search(rf"^{re.escape(check_id)}\s+\S", checks, re.M), check_id
    plugins = cli("plugins").stdout
    assert ("provision_plugins.kvm: provision_check_catalog, provision_checks, provision_probe, "
            "provision_probe_functional, provision_remedies, provision_render, provision_virt_decision") in plugins


def test_on_a_terminal_there_is_colour_and_a_progress_bar(tmp_path):
    inv = tmp_path / "two.yml"
    inv.write_text("all:\n  hosts:\n    a: {ansible_connection: local}\n    b: {ansible_connection: local}\n")
    # script(1) gives the command a pseudo-terminal, as an operator's shell does
    proc = subprocess.run(["script", "-qec", f"{provision_bin()} preflight -i {inv}", "/dev/null"],
                          capture_output=True, text=True)
    assert "\x1b[" in proc.stdout  # colour
    assert "preflight " in proc.stdout and "━" in proc.stdout  # the progress bar (on the terminal's stderr)
    assert "preflight summary" in proc.stdout


@pytest.mark.skipif(not os.path.exists("/dev/kvm") or os.geteuid() != 0,
                    reason="needs root and a /dev/kvm to cover (without one, every test here runs that way)")
def test_without_a_usable_dev_kvm_the_vcpu_run_is_skipped_and_the_decision_is_qemu():
    """/dev/null bound over /dev/kvm in a private mount namespace: the API does not answer, no vCPU
    is made (kvm.run skipped with that reason), and the node decides qemu, here and on a KVM host."""
    script = 'mount --bind /dev/null /dev/kvm && exec "$@"'
    result = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", provision_bin(),
                             "preflight", "-o", "json"], capture_output=True, text=True)
    host = json.loads(result.stdout)["hosts"][0]
    checks = {c["id"]: c for c in host["checks"]}
    assert checks["kvm.run"]["status"] == "skip"
    assert checks["kvm.run"]["message"].startswith("not run: no vCPU could be made: ENOTTY")
    assert checks["kvm.api"]["status"] == "warn" and "ENOTTY" in checks["kvm.api"]["message"]
    assert host["decision"]["virt_type"] == "qemu"


def test_ctrl_c_while_the_cli_is_imported_is_quiet():
    """The interrupt lands in the middle of the imports (when typer is looked up), as a Ctrl-C at start-up
    would: exit 130 and one line, no traceback."""
    program = ("import sys\n"
               "class Interrupt:\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               "        if name == 'typer':\n"
               "            raise KeyboardInterrupt\n"
               "sys.meta_path.insert(0, Interrupt())\n"
               "from provision.entry import main\n"
               "main()\n")
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert proc.returncode == 130
    assert proc.stderr == "provision: interrupted while starting; nothing was done\n"
