"""Hostile or broken inventory files: bounded work, exit 2 naming the file and the reason, no traceback."""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

import pytest

from provision.inventory.load import load_inventory
from tests.conftest import provision_bin
from tests.unprivileged import as_nobody


def alias_bomb(levels: int = 9) -> str:
    """A few hundred bytes that expand to 9**9 values when every alias is followed."""
    lines = ["all:", "  hosts:", "    n1:", "      provision:", "        virt_type: qemu", "        hypervisor:",
             "          cpu_mode: custom", "          cpu_models: &a0 [x, x, x, x, x, x, x, x, x]"]
    refs = "\n".join(f"        l{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1))
    return "\n".join(lines) + "\n      vars_bomb:\n" + refs.replace("        l", "        l") + \
        f"\n      provision_bomb: *a{levels}\n"


def validate(path: Path, memory: int = 1 << 30) -> subprocess.CompletedProcess:
    def limit():  # 1 GiB of address space: the bomb once took 1.8 GB
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run([provision_bin(), "inventory", "validate", "-i", str(path)], capture_output=True, text=True,
                          timeout=60, preexec_fn=limit)


CASES = [
    ("bomb.yml", alias_bomb(), "expands to more than 2,000,000 values (YAML aliases that repeat each other?); refused"),
    ("loop.yml", "all:\n  hosts:\n    n1:\n      provision: &r\n        x: *r\n",
     "a YAML alias refers to a value that holds it (a loop); refused"),
    ("deep.yml", "all:\n  hosts:\n    n1:\n      provision:\n        x: " + "[" * 990 + "]" * 990 + "\n",
     "nested more than 64 levels deep; refused"),
    ("latin1.yml", "all:\n  hosts:\n    n\xe91: {}\n".encode("latin-1"), "yaml plugin: YAML parsing failed: 'utf-8' codec"),
    ("binary.yml", bytes(range(256)) * 4, "yaml plugin: YAML parsing failed: 'utf-8' codec"),
]


@pytest.mark.parametrize(("name", "text", "message"), CASES, ids=[c[0] for c in CASES])
def test_hostile_files_are_input_errors_with_bounded_work(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    result = validate(path)
    assert result.returncode == 2, result.stderr
    assert f"provision: error: {path}" in result.stderr and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_the_alias_bomb_is_refused_in_group_vars_too(tmp_path):
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    n1: {ansible_connection: local}\n")
    (tmp_path / "group_vars").mkdir()
    bomb = alias_bomb().split("      vars_bomb:\n", 1)[1].replace("        l", "l").replace("      provision_bomb", "x")
    (tmp_path / "group_vars" / "all.yml").write_text("a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + bomb)
    result = validate(tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"{tmp_path / 'group_vars' / 'all.yml'}: expands to more than 2,000,000 values" in result.stderr


@pytest.mark.root  # drops from root to nobody
def test_unreadable_files_and_folders_as_an_unprivileged_user():
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(dir="/tmp"))  # reachable by nobody, unlike pytest's folders
    try:
        unreadable_as_nobody(base)
    finally:
        shutil.rmtree(base)


def unreadable_as_nobody(base: Path) -> None:
    os.chmod(base, 0o755)
    folder = base / "inv"
    folder.mkdir()
    (folder / "hosts.yml").write_text("all:\n  hosts:\n    n1: {}\n")
    load_inventory(folder / "hosts.yml").host("n1")  # imports what it needs while root (pyenv's stdlib is root's)
    os.chmod(folder / "hosts.yml", 0o600)
    said = as_nobody(lambda: load_inventory(folder / "hosts.yml"))
    assert said == f"InputError: {folder / 'hosts.yml'}: cannot read: Permission denied"
    os.chmod(folder, 0o700)
    said = as_nobody(lambda: load_inventory(folder))
    assert said.startswith(f"InputError: {folder}")
    assert "Permission denied" in said


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "1e9"])
def test_unusable_timeouts_are_usage_errors(value):
    result = subprocess.run([provision_bin(), "preflight", "--timeout", value], capture_output=True, text=True)
    assert result.returncode == 2
    assert "Invalid value for '--timeout'" in result.stderr and "Traceback" not in result.stderr


def test_errors_speak_of_the_inventorys_fields_not_the_validators(tmp_path, cli):
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  hosts:\n    n1:\n      provision:\n        network:\n"
                   "          bridges: [{name: br0, addresses: [300.1.1.1/24]}]\n"
                   "        storage: [{name: v, type: rbd, pool: v, monitors: [m1], user: u, secret_uuid: 12,"
                   " key_file: /k}]\n")
    result = cli("inventory", "validate", "-i", str(inv))
    assert result.exit_code == 2
    assert (f"{inv}: host n1: provision.network.bridges[0].addresses[0]: must be an IPv4 or IPv6 address with its "
            "prefix length, like 192.0.2.10/24 (got '300.1.1.1/24')") in result.stderr
    assert "provision.storage[0].secret_uuid: UUID input should be a string, bytes or UUID object (the value is not shown" in result.stderr
    for internal in ("lax-or-strict", "function-plain", "json-or-python", "is-instance"):
        assert internal not in result.stderr
    assert result.stderr.count("addresses[0]") == 1
