"""Hostile or broken inventory files: bounded work, exit 2 naming the file and the reason, no traceback."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from provision.inventory.load import load_inventory
from tests.conftest import ROOT, provision_bin
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
    assert said == f"InputError: {folder / 'hosts.yml'}: cannot read this file (permission denied)"
    os.chmod(folder, 0o700)
    said = as_nobody(lambda: load_inventory(folder))
    assert said.startswith(f"InputError: {folder}")
    assert "permission denied" in said


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


@pytest.mark.root  # drops from root to nobody
def test_a_vars_folder_nobody_can_enter_is_an_error_not_lost_settings():
    """Ansible skips a group_vars/ it cannot read: the group's virt_type: kvm would silently become auto."""
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        os.chmod(base, 0o755)
        (base / "hosts.yml").write_text("compute:\n  hosts:\n    n1: {}\n")
        (base / "group_vars").mkdir()
        (base / "group_vars" / "compute.yml").write_text("provision: {virt_type: kvm}\n")
        load_inventory(base / "hosts.yml").host("n1")  # imports what it needs while root
        for folder, mode in (("group_vars", 0o700), ("group_vars", 0o600)):
            os.chmod(base / folder, mode)
            said = as_nobody(lambda: load_inventory(base / "hosts.yml"))
            assert said == (f"InputError: {base / 'group_vars'}: cannot read this folder (permission denied); its "
                            "inventory vars would be lost"), said
        os.chmod(base / "group_vars", 0o755)
        os.chmod(base / "group_vars" / "compute.yml", 0o600)
        said = as_nobody(lambda: load_inventory(base / "hosts.yml"))
        assert said == f"InputError: {base / 'group_vars' / 'compute.yml'}: cannot read this file (permission denied)"
    finally:
        shutil.rmtree(base)


@pytest.mark.root  # drops from root to nobody
def test_a_home_nobody_can_write_is_no_traceback():
    """nobody's HOME is /nonexistent: Ansible's own temporary folder goes to a private one under /tmp."""
    result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             sys.executable, "-c", "import os; print(os.environ['HOME'])"],
                            capture_output=True, text=True, env={**os.environ, "HOME": "/nonexistent"})
    if result.returncode != 0:
        pytest.skip(f"this interpreter cannot run as nobody here: {result.stderr.strip()[:200]}")
    script = ("import sys; from provision.cli import main; sys.argv = ['provision', 'inventory', 'validate', '-i', "
              f"{str(ROOT / 'inventories' / 'example')!r}]; main()")
    result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", script],
                            capture_output=True, text=True, env={**os.environ, "HOME": "/nonexistent"}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "valid, 6 hosts" in result.stdout and not os.path.exists("/nonexistent")


@pytest.mark.parametrize("pattern", ["!", "&", "a:!", "a:&"])
def test_patterns_ansible_cannot_parse_are_input_errors(cli, pattern):
    result = cli("inventory", "hosts", "-i", str(ROOT / "inventories" / "example"), "-l", pattern)
    assert result.exit_code == 2
    assert f"--limit {pattern!r}: " in result.stderr and "Traceback" not in result.output


def test_a_symlink_loop_in_group_vars_is_named(cli, tmp_path):
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    n1: {}\n")
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "a").symlink_to("b")
    (tmp_path / "group_vars" / "b").symlink_to("a")
    result = cli("inventory", "validate", "-i", str(tmp_path))
    assert result.exit_code == 2
    assert f"{tmp_path / 'group_vars' / 'a'}: a symlink loop; not an inventory vars file or folder" in result.stderr


def test_devices_fifos_and_huge_files_are_refused_unopened(cli, tmp_path):
    fifo = tmp_path / "fifo.yml"
    os.mkfifo(fifo)  # opening it would block for ever: no writer
    huge = tmp_path / "huge.yml"
    with open(huge, "wb") as fh:
        fh.truncate(50 * 2**20)  # 50 MiB, sparse: reading it would take a minute and gigabytes
    (tmp_path / "vars").mkdir()
    (tmp_path / "vars" / "hosts.yml").write_text("all:\n  hosts:\n    n1: {}\n")
    (tmp_path / "vars" / "group_vars").mkdir()
    os.mkfifo(tmp_path / "vars" / "group_vars" / "all.yml")
    for source, said in (("/dev/zero", "/dev/zero: is a character device, not an inventory file; not opened"),
                         (str(fifo), f"{fifo}: is a FIFO, not an inventory file; not opened"),
                         (str(huge), f"{huge}: is 50 MiB; an inventory file may be at most 16 MiB (refused before reading it)"),
                         (str(tmp_path / "vars"), f"{tmp_path / 'vars' / 'group_vars' / 'all.yml'}: is a FIFO, not an "
                                                  "inventory vars file; not opened")):
        result = cli("inventory", "validate", "-i", source)
        assert result.exit_code == 2, source
        assert said in result.stderr, result.stderr


def test_a_path_no_filesystem_can_hold_is_an_input_error(cli, tmp_path):
    inv = tmp_path / "hosts.yml"
    long = "/etc/ceph/" + "c" * 300 + ".conf"
    inv.write_text(f"all:\n  hosts:\n    n1:\n      provision:\n        storage:\n          - {{type: rbd, name: vms, pool: vms, "
                   f"monitors: [192.0.2.1], user: nova, secret_uuid: 457eb676-33da-42ec-9a8c-9293d545c337, "
                   f"key_file: /etc/ceph/k, ceph_conf: {long}}}\n")
    result = cli("render", "-i", str(inv), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert ("provision.storage[0].ceph_conf: must be a path a filesystem can hold: at most 255 bytes a name and 4,095 "
            "in all") in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_folder_that_links_to_itself_is_named(cli, tmp_path):
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    n1: {}\n")
    (tmp_path / "again").symlink_to(".")
    result = cli("inventory", "validate", "-i", str(tmp_path))
    assert result.exit_code == 2
    assert f"{tmp_path / 'again'}: a symlink to a folder that holds it (a loop); not an inventory folder" in result.stderr
