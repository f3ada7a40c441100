"""Differential tests with Ansible as the oracle: on every inventory of the corpus
(tests/fixtures/inventories/), provision selects the hosts ``ansible PATTERN --list-hosts`` lists, reads
the connection variables ``ansible-inventory`` gives, and merges ``provision`` as Ansible merges it
with ``hash_behaviour = merge``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from provision.inventory.load import load_inventory
from provision.inventory.model import CONNECTION_VARS
from tests.conftest import ROOT

CORPUS = ROOT / "tests" / "fixtures" / "inventories"
BIN = Path(sys.executable).parent
SOURCES = {
    "kolla_ini": CORPUS / "kolla_ini" / "multinode",
    "precedence": CORPUS / "precedence" / "hosts.yml",
    "mixed": CORPUS / "mixed",
    "legacy": CORPUS / "legacy" / "hosts.yml",
    "patterns": CORPUS / "patterns" / "hosts.yml",
}
PATTERNS = {
    "kolla_ini": ["all", "compute", "openstack:!control", "cmp0[1:2]", "~cmp0[13]", "network", "cmp-big"],
    "precedence": ["all", "cmp2", "compute:&rack_b", "ungrouped"],
    "mixed": ["all", "compute", "storage", "ungrouped"],
    "legacy": ["all", "localhost", "old1,tmpl1"],
    "patterns": ["all", "compute[0]", "compute[1:]", "compute[-1]", "compute[:2]", "!rack2", "&compute",
                 "~^cmp[24]$", "rack2:&compute", "sto1", "ungrouped", "localhost", "compute:!sto1", "*1",
                 "cmp1,sto2,lone1"],
}


def oracle_env() -> dict:
    return {**os.environ, "ANSIBLE_HASH_BEHAVIOUR": "merge", "ANSIBLE_DEPRECATION_WARNINGS": "false",
            "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false"}


def ansible_hosts(source: Path, pattern: str) -> list[str]:
    out = subprocess.run([str(BIN / "ansible"), "-i", str(source), pattern, "--list-hosts"], capture_output=True,
                         text=True, env=oracle_env(), check=True).stdout
    return [line.strip() for line in out.splitlines()[1:] if line.strip()]


def ansible_hostvars(source: Path) -> dict:
    out = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(source), "--list"], capture_output=True,
                         text=True, env=oracle_env(), check=True).stdout
    return json.loads(out)["_meta"]["hostvars"]


@pytest.mark.parametrize(("case", "pattern"), [(c, p) for c, ps in PATTERNS.items() for p in ps])
def test_patterns_select_what_ansible_lists(case, pattern):
    expected = ansible_hosts(SOURCES[case], pattern)
    if not expected:
        with pytest.raises(Exception, match="matches no host"):
            load_inventory(SOURCES[case]).select(pattern)
        return
    assert load_inventory(SOURCES[case]).select(pattern) == expected


@pytest.mark.parametrize("case", list(SOURCES))
def test_connection_variables_and_provision_are_ansibles(case):
    expected = ansible_hostvars(SOURCES[case])
    inv = load_inventory(SOURCES[case])
    names = inv.select(None)
    assert sorted(names) == sorted(expected)
    for name in names:
        host, want = inv.host(name), expected[name]
        for canonical, spellings in CONNECTION_VARS.items():
            set_by = [s for s in spellings if s in want]
            if not set_by:
                assert canonical not in host.vars, (name, canonical)
                continue
            value = want[set_by[-1]]
            if isinstance(value, str) and "{{" in value:
                continue  # templated: compared with Ansible's own templating below
            assert host.vars[canonical] == value, (name, canonical)
            assert host.label(canonical) == set_by[-1]
        assert host.provision == want.get("provision", {}), name


def test_templated_connection_values_render_as_ansible_renders_them():
    source = SOURCES["legacy"]
    out = subprocess.run([str(BIN / "ansible"), "-i", str(source), "tmpl1", "-c", "local", "-m", "debug",
                          "-a", 'msg="{{ ansible_host }} {{ ansible_user }}"'], capture_output=True, text=True,
                         env=oracle_env()).stdout
    assert '"msg": "192.0.2.33 ops"' in out
    host = load_inventory(source).host("tmpl1")
    assert (host.vars["ansible_host"], host.vars["ansible_user"]) == ("192.0.2.33", "ops")


def test_the_connection_variable_table_is_ansibles_own():
    """CONNECTION_VARS lists, in order, the variables Ansible's ssh connection plugin reads each option from."""
    from ansible import constants as C
    from ansible.plugins.loader import connection_loader

    connection_loader.get("ssh", class_only=True)
    options = C.config.get_configuration_definitions("connection", "ssh")

    def plain(option: str) -> tuple[str, ...]:
        return tuple(v["name"] for v in options[option].get("vars", []) if "delegated_vars" not in v["name"]
                     and v["name"] != "inventory_hostname")

    assert plain("host") == CONNECTION_VARS["ansible_host"]
    assert plain("port") == CONNECTION_VARS["ansible_port"]
    assert plain("remote_user") == CONNECTION_VARS["ansible_user"]
    assert plain("private_key_file") == CONNECTION_VARS["ansible_ssh_private_key_file"]
    assert plain("ssh_common_args") == CONNECTION_VARS["ansible_ssh_common_args"]
    assert plain("ssh_extra_args") == CONNECTION_VARS["ansible_ssh_extra_args"]


def test_connections_as_ansible_makes_them(hooks):
    from provision.inventory.select import select_nodes

    nodes = {n.name: n.spec for n in select_nodes(inventory=str(SOURCES["legacy"]), hooks=hooks).nodes}
    assert nodes["old1"].spec == "ssh://legacy@192.0.2.31:2231"  # ansible_ssh_*; smart is ssh
    assert nodes["both1"].spec == "ssh://old@192.0.2.32"  # the ssh_ spelling wins, as in the ssh plugin
    assert nodes["tmpl1"].spec == "ssh://ops@192.0.2.33"
    assert nodes["localhost"].scheme == "ssh"  # in the inventory: reached over ssh, as Ansible does
    assert nodes["para1"].scheme == "paramiko"
    implicit = select_nodes(inventory=str(SOURCES["patterns"]), limit="localhost", hooks=hooks).nodes
    assert [(n.name, n.spec.scheme) for n in implicit] == [("localhost", "local")]  # Ansible's implicit localhost


def test_an_unparseable_file_in_a_folder_is_a_warning_as_in_ansible(tmp_path):
    """A README without an extension in an inventory folder: Ansible warns and reads the rest, unless its
    inventory_any_unparsed_is_failed setting makes it fatal; provision does the same."""
    from tests.conftest import provision_bin

    (tmp_path / "hosts.yml").write_text("compute:\n  hosts:\n    cmp1: {}\n    cmp2: {}\n")
    (tmp_path / "README").write_text("This folder holds the site's inventory: edit with care!\n[not ini\n")
    env = {**oracle_env(), "ANSIBLE_INVENTORY_UNPARSED_WARNING": "true"}
    listed = subprocess.run([str(BIN / "ansible"), "-i", str(tmp_path), "all", "--list-hosts"], capture_output=True,
                            text=True, env=env)
    assert listed.returncode == 0 and "Unable to parse" in listed.stderr and str(tmp_path / "README") in listed.stderr
    expected = [line.strip() for line in listed.stdout.splitlines()[1:] if line.strip()]
    assert load_inventory(tmp_path).select(None) == expected == ["cmp1", "cmp2"]
    result = subprocess.run([provision_bin(), "inventory", "hosts", "-i", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.split() == expected
    assert f"provision: warning: Unable to parse {tmp_path / 'README'} as an inventory source" in result.stderr

    fatal = {**env, "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true"}
    assert subprocess.run([str(BIN / "ansible"), "-i", str(tmp_path), "all", "--list-hosts"], capture_output=True,
                          env=fatal).returncode != 0
    result = subprocess.run([provision_bin(), "inventory", "hosts", "-i", str(tmp_path)], capture_output=True, text=True,
                            env=fatal)
    assert result.returncode == 2
    assert f"{tmp_path / 'README'}: not an inventory Ansible can read" in result.stderr


def test_a_missing_key_file_fails_only_that_hosts_connection_as_in_ansible(tmp_path):
    """Ansible lists a host whose key file is missing here and fails only when it connects to it."""
    from tests.conftest import provision_bin

    source = tmp_path / "hosts.yml"
    source.write_text("all:\n  hosts:\n    n1: {ansible_connection: local}\n"
                      f"    n2: {{ansible_host: 192.0.2.9, ansible_ssh_private_key_file: {tmp_path}/gone/id_ed25519}}\n")
    expected = ansible_hosts(source, "all")
    assert expected == ["n1", "n2"] and ansible_hostvars(source)["n2"]["ansible_ssh_private_key_file"]
    result = subprocess.run([provision_bin(), "inventory", "hosts", "-i", str(source), "-l", "all"], capture_output=True,
                            text=True)
    assert result.returncode == 0 and result.stdout.split() == expected
    result = subprocess.run([provision_bin(), "preflight", "-i", str(source), "-o", "json"], capture_output=True, text=True)
    hosts = {h["host"]: h for h in json.loads(result.stdout)["hosts"]}
    assert result.returncode == 1
    assert hosts["n1"]["reachable"] is True
    assert hosts["n2"] == {**hosts["n2"], "reachable": False,
                           "error": f"ansible_ssh_private_key_file: no key file {tmp_path}/gone/id_ed25519 on this machine"}
