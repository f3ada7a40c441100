"""No lookups from inventories: an inventory value that calls ``lookup()``, ``query()`` or ``q()`` is refused
with exit 2, naming the file, host and field, and the lookup never runs (the ``pipe`` lookup would run
its command on this machine). Each case carries a marker file that the command would create."""

import json
import os
import subprocess

import pytest

from provision.inventory.lookups import ALLOW_ENV
from tests.conftest import provision_bin

FORMS = {
    "lookup": "{{{{ lookup('pipe', 'touch {marker}; echo 192.0.2.2') }}}}",
    "query": "{{{{ query('pipe', 'touch {marker}; echo 192.0.2.2') | first }}}}",
    "q": "{{{{ q('ansible.builtin.pipe', 'touch {marker}') | join }}}}",
    "lines": "{{{{ lookup('lines', 'touch {marker}; echo kvm') }}}}",
    "in a filter": "{{{{ 'qemu' | default(lookup('pipe', 'touch {marker}'), true) }}}}",
    "swallowed by default": "{{{{ lookup('pipe', 'touch {marker}') | default('qemu') }}}}",
    "nested call": "{{{{ ('x' ~ lookup('pipe', 'touch {marker}')) | replace('x', '') }}}}",
}

# (where in the host's variables, the field the error names)
FIELDS = {
    "ansible_host": ("ansible_host: {v}", "ansible_host"),
    "ansible_user": ("ansible_user: {v}", "ansible_user"),
    "ansible_port": ("ansible_port: {v}", "ansible_port"),
    "ansible_python_interpreter": ("ansible_python_interpreter: {v}", "ansible_python_interpreter"),
    "ansible_ssh_common_args": ("ansible_ssh_common_args: {v}", "ansible_ssh_common_args"),
    "ansible_connection": ("ansible_connection: {v}", "ansible_connection"),
    "ansible_ssh_private_key_file": ("ansible_ssh_private_key_file: {v}", "ansible_ssh_private_key_file"),
    "virt_type": ("provision: {{virt_type: {v}}}", "provision.virt_type"),
    "network.renderer": ("provision: {{network: {{renderer: {v}}}}}", "provision.network.renderer"),
    "nfs export": ("provision: {{storage: [{{type: nfs, name: n, server: 192.0.2.1, export: {v}, "
                   "mountpoint: /srv/n}}]}}", "provision.storage[0].export"),
}


def inventory(tmp_path, line: str) -> str:
    path = tmp_path / "site.yml"
    path.write_text("all:\n  hosts:\n    n1:\n      " + line + "\n")
    return str(path)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("where", FIELDS)
def test_every_form_in_every_field_is_refused(cli, tmp_path, form, where):
    marker = tmp_path / "ran"
    line, label = FIELDS[where]
    source = inventory(tmp_path, line.format(v=json.dumps(FORMS[form].format(marker=marker))))
    result = cli("inventory", "validate", "-i", source)
    assert result.exit_code == 2, result.output
    assert f"{source}: host n1: {label}: lookup " in result.stderr
    assert "refused: inventory values are data" in result.stderr and "nothing was run" in result.stderr
    assert "Traceback" not in result.output
    assert not marker.exists()


COMMANDS = {
    "inventory validate": ["inventory", "validate"],
    "inventory hosts": ["inventory", "hosts", "-l", "all"],
    "inventory show": ["inventory", "show", "n1"],
    "render --out": ["render", "--out", "{out}"],
    "render --diff": ["render", "--diff"],
    "preflight": ["preflight"],
    "apply --check": ["apply", "--check"],
    "verify": ["verify"],
    "guest list": ["guest", "list"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_refuses_before_anything_runs(cli, tmp_path, command):
    marker = tmp_path / "ran"
    source = inventory(tmp_path, f"ansible_host: \"{{{{ lookup('pipe', 'touch {marker}; echo 192.0.2.2') }}}}\"")
    out = tmp_path / "out"
    args = [a.replace("{out}", str(out)) for a in COMMANDS[command]]
    result = cli(*args, "-i", source)
    assert result.exit_code == 2, result.output
    assert f"{source}: host n1: ansible_host: lookup 'pipe' refused" in result.stderr
    assert not marker.exists() and not out.exists()


def test_through_a_variable_group_vars_and_an_ini_inventory(cli, tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "compute.yml").write_text(
        f"address: \"{{{{ lookup('pipe', 'touch {marker}; echo 192.0.2.3') }}}}\"\nansible_host: '{{{{ address }}}}'\n")
    (tmp_path / "hosts.ini").write_text("[compute]\nn1\n")
    result = cli("inventory", "show", "n1", "-i", str(tmp_path))
    assert result.exit_code == 2
    assert f"{tmp_path / 'group_vars' / 'compute.yml'}: host n1: ansible_host: lookup 'pipe' refused" in result.stderr
    assert not marker.exists()
    ini = tmp_path / "flat.ini"
    ini.write_text(f"n2 ansible_host=\"{{{{ lookup('pipe', 'touch {marker}') }}}}\"\n")
    result = cli("inventory", "validate", "-i", str(ini))
    assert result.exit_code == 2 and "host n2: ansible_host: lookup 'pipe' refused" in result.stderr
    assert not marker.exists()


def test_a_constructed_plugin_expression_is_refused(tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "01-hosts.yml").write_text("all:\n  hosts:\n    n1: {}\n")
    (tmp_path / "02-constructed.yml").write_text(
        "plugin: constructed\nstrict: false\n"
        f"compose:\n  rack: \"lookup('pipe', 'touch {marker}; echo r1')\"\n")
    env = {**os.environ, "ANSIBLE_INVENTORY_ENABLED": "yaml,constructed"}  # read when Ansible loads: a process of its own
    result = subprocess.run([provision_bin(), "inventory", "validate", "-i", str(tmp_path)], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert f"{tmp_path}: lookup 'pipe' refused" in result.stderr
    assert not marker.exists()


def test_an_allowed_lookup_runs_and_only_that_one(cli, tmp_path):
    env = {ALLOW_ENV: None, "PROVISION_TEST_ADDRESS": "192.0.2.44"}
    source = inventory(tmp_path, "ansible_host: \"{{ lookup('env', 'PROVISION_TEST_ADDRESS') }}\"")
    result = cli("--allow-lookup", "env", "inventory", "show", "n1", "-i", source, "-o", "json", env=env)
    assert result.exit_code == 0, result.output
    assert '"connection": "ssh://192.0.2.44"' in result.stdout
    result = cli("inventory", "show", "n1", "-i", source, env={**env, ALLOW_ENV: "ansible.builtin.env"})
    assert result.exit_code == 0, result.output
    result = cli("--allow-lookup", "file", "inventory", "show", "n1", "-i", source, env=env)
    assert result.exit_code == 2
    assert "lookup 'env' refused" in result.stderr and "--allow-lookup env or PROVISION_ALLOW_LOOKUPS=env" in result.stderr


@pytest.mark.parametrize("statement", ["{% include 'addr.txt' %}", "{% import 'addr.txt' as a %}x",
                                       "{% from 'addr.txt' import b %}x", "{% extends 'addr.txt' %}"])
def test_a_template_that_reads_a_file_is_refused(cli, tmp_path, monkeypatch, statement):
    """Jinja's include, import and extends read a file from the working folder, as lookup('file') would."""
    (tmp_path / "addr.txt").write_text("192.0.2.77")
    monkeypatch.chdir(tmp_path)
    source = inventory(tmp_path, f"ansible_host: {json.dumps(statement)}")
    result = cli("inventory", "show", "n1", "-i", source)
    assert result.exit_code == 2, result.output
    assert (f"{source}: host n1: ansible_host: {{% include/import %}} of 'addr.txt' refused: inventory values are data, "
            "and a template that reads a file is a lookup of it; nothing was read") in result.stderr
    assert "192.0.2.77" not in result.output
