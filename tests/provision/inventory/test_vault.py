"""Vault, as Ansible opens it: --vault-password-file and ANSIBLE_VAULT_PASSWORD_FILE; a value that is not
needed stays closed; a needed one that cannot be opened is exit 2 naming the host and the variable."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import provision_bin

BIN = Path(sys.executable).parent
SECRET_USER = "vaulted-user"


def encrypt(tmp_path: Path, value: str, name: str) -> str:
    """``name: !vault |`` and the encrypted lines, made with ansible-vault and the test password."""
    out = subprocess.run([str(BIN / "ansible-vault"), "encrypt_string", "--vault-password-file",
                          str(tmp_path / "pw"), value, "--name", name], capture_output=True, text=True, check=True)
    return out.stdout


@pytest.fixture
def vaulted(tmp_path):
    (tmp_path / "pw").write_text("test-pass\n")
    (tmp_path / "wrong").write_text("not-the-pass\n")
    user = textwrap.indent(encrypt(tmp_path, SECRET_USER, "ansible_user"), " " * 6)
    other = textwrap.indent(encrypt(tmp_path, "never-needed", "some_token"), " " * 6)
    (tmp_path / "needed.yml").write_text("all:\n  hosts:\n    n1:\n      ansible_host: 192.0.2.5\n" + user)
    (tmp_path / "unneeded.yml").write_text("all:\n  hosts:\n    n1:\n      ansible_host: 192.0.2.5\n" + other)
    (tmp_path / "gv").mkdir()
    (tmp_path / "gv" / "hosts.yml").write_text("all:\n  hosts:\n    n1: {ansible_host: 192.0.2.5}\n")
    (tmp_path / "gv" / "group_vars").mkdir()
    (tmp_path / "gv" / "group_vars" / "all.yml").write_text(f"ansible_user: {SECRET_USER}\n")
    subprocess.run([str(BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(tmp_path / "pw"),
                    str(tmp_path / "gv" / "group_vars" / "all.yml")], check=True, capture_output=True)
    return tmp_path


def show(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([provision_bin(), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


def test_a_needed_value_is_opened_with_the_password_file(vaulted):
    result = show("--vault-password-file", str(vaulted / "pw"), "inventory", "show", "n1", "-i", str(vaulted / "needed.yml"))
    assert result.returncode == 0, result.stderr
    assert f"connection: ssh://{SECRET_USER}@192.0.2.5" in result.stdout
    env = show("inventory", "show", "n1", "-i", str(vaulted / "needed.yml"),
               env={"ANSIBLE_VAULT_PASSWORD_FILE": str(vaulted / "pw")})
    assert env.returncode == 0 and f"ssh://{SECRET_USER}@" in env.stdout


def test_a_value_that_is_not_needed_stays_closed(vaulted):
    result = show("inventory", "show", "n1", "-i", str(vaulted / "unneeded.yml"))
    assert result.returncode == 0, result.stderr
    assert "never-needed" not in result.stdout


@pytest.mark.parametrize("password", [None, "wrong"])
def test_a_needed_value_that_cannot_be_opened_names_host_and_variable(vaulted, password):
    args = ["--vault-password-file", str(vaulted / password)] if password else []
    result = show(*args, "inventory", "validate", "-i", str(vaulted / "needed.yml"))
    assert result.returncode == 2, result.stderr
    assert f"{vaulted / 'needed.yml'}: host n1: ansible_user: cannot decrypt its vault value" in result.stderr
    assert "Traceback" not in result.stderr and SECRET_USER not in result.stderr


def test_an_encrypted_group_vars_file(vaulted):
    inv = str(vaulted / "gv")
    opened = show("--vault-password-file", str(vaulted / "pw"), "inventory", "show", "n1", "-i", inv)
    assert opened.returncode == 0 and f"ssh://{SECRET_USER}@192.0.2.5" in opened.stdout
    closed = show("inventory", "show", "n1", "-i", inv)
    assert closed.returncode == 2
    assert "host n1: " in closed.stderr and "vault" in closed.stderr.lower() and "Traceback" not in closed.stderr


def test_a_missing_password_file_is_an_input_error(vaulted):
    result = show("--vault-password-file", str(vaulted / "nope"), "inventory", "validate", "-i", str(vaulted / "needed.yml"))
    assert result.returncode == 2
    assert "vault password: " in result.stderr and "nope" in result.stderr
