"""``provision inventory`` commands and the -i/-l options, in-process."""

import json

from tests.conftest import ROOT

EXAMPLE = str(ROOT / "inventories" / "example")


def test_hosts_json_with_limit(cli):
    result = cli("inventory", "hosts", "-i", EXAMPLE, "-l", "compute:!rack2", "-o", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"hosts": ["cmp1", "cmp2"]}


def test_show(cli):
    result = cli("inventory", "show", "cmp2", "-i", EXAMPLE, "-o", "json")
    data = json.loads(result.stdout)
    assert data["connection"] == "ssh://ops@192.0.2.12:2202"
    assert data["groups"] == ["compute", "rack1"]
    assert data["provision"]["virt_type"] == "kvm"


def test_show_unknown_host(cli):
    result = cli("inventory", "show", "cmp9", "-i", EXAMPLE)
    assert result.exit_code == 2
    assert "no host 'cmp9'; hosts: ctl1, ctl2, cmp1, cmp2, cmp3, cmp4" in result.stderr


def test_validate(cli, tmp_path):
    assert cli("inventory", "validate", "-i", EXAMPLE).stdout.strip() == f"{EXAMPLE}: valid, 6 hosts"
    bad = tmp_path / "site.yml"
    bad.write_text("all:\n  hosts:\n    node3: {provision: {virt_type: kvmm}}\n")
    result = cli("inventory", "validate", "-i", str(bad))
    assert result.exit_code == 2
    assert (f"{bad}: host node3: provision.virt_type: must be one of auto, kvm, qemu (got 'kvmm')"
            in result.stderr)
    assert "Traceback" not in result.output


def test_preflight_contacts_no_node_while_the_inventory_is_invalid(cli, tmp_path):
    bad = tmp_path / "site.yml"
    # n1 would be reachable (local); the invalid n2 must stop the run before anything is probed
    bad.write_text("all:\n  hosts:\n    n1: {ansible_connection: local}\n"
                   "    n2: {ansible_connection: local, provision: {hypervisor: {libvirt: podman}}}\n")
    result = cli("preflight", "-i", str(bad), "-o", "json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "host n2: provision.hypervisor.libvirt: must be one of host, container (got 'podman')" in result.stderr


def test_limit_matching_nothing_is_exit_2(cli):
    result = cli("preflight", "-i", EXAMPLE, "-l", "rack9")
    assert result.exit_code == 2
    assert "--limit 'rack9' matches no host" in result.stderr and "groups: all, compute, control" in result.stderr


def test_inventory_and_host_together_is_exit_2(cli):
    result = cli("preflight", "-i", EXAMPLE, "-H", "local://")
    assert result.exit_code == 2
    assert "use either --inventory/-i or --host/-H, not both" in result.stderr


def test_local_inventory_runs_the_local_node(cli):
    result = cli("preflight", "-i", str(ROOT / "inventories" / "local.yaml"), "-o", "json")
    assert json.loads(result.stdout)["hosts"][0]["host"] == "localhost"
