"""render --diff shows no secret: not through a symlink, not in any line shape, not a secret file itself;
and it opens no FIFO or device."""

from __future__ import annotations

import os

import pytest

from tests.cli.test_render import CHAP, SECRET, inventory

UUID = "457eb676-33da-42ec-9a8c-9293d545c337"


def settings(tmp_path, conf, key=None, chap=None):
    key = key or tmp_path / "client.nova.key"
    chap = chap or tmp_path / "chap"
    if not key.exists():
        key.write_text(f"[client.nova]\n\tkey = {SECRET}\n")
    if not chap.exists():
        chap.write_text(CHAP + "\n")
    return {"virt_type": "qemu", "storage": [
        {"name": "vms", "type": "rbd", "pool": "vms", "monitors": ["192.0.2.61"], "user": "nova",
         "secret_uuid": UUID, "key_file": str(key), "ceph_conf": str(conf)},
        {"name": "san1", "type": "iscsi", "portal": "192.0.2.50", "target": "iqn.2026-01.com.example:san1",
         "initiator": "iqn.2026-01.com.example:n1", "chap": {"username": "u", "password_file": str(chap)}}]}


@pytest.mark.parametrize("shape", [
    "key = {s}", "key={s}", "secret: {s}", '"key": "{s}"', "{s}", "auth_cephx_key {s}", "x = prefix-{s}-suffix",
    "chap = {c}", "{c}",
])
def test_every_secret_the_inventory_names_is_redacted_whatever_the_line(cli, tmp_path, shape):
    conf = tmp_path / "ceph.conf"
    conf.write_text("[global]\nmon_host = 192.0.2.99\n" + shape.format(s=SECRET, c=CHAP) + "\n")
    result = cli("render", "-i", inventory(tmp_path, settings(tmp_path, conf)), "--diff")
    assert result.exit_code == 0, result.output
    assert "-mon_host = 192.0.2.99" in result.stdout  # the file was read and diffed
    assert "<redacted>" in result.stdout
    assert SECRET not in result.output and CHAP not in result.output
    assert SECRET[8:24] not in result.output


def test_a_symlink_on_the_node_is_named_not_followed(cli, tmp_path):
    chap = tmp_path / "chap"
    chap.write_text(CHAP)
    conf = tmp_path / "ceph.conf"
    conf.symlink_to("/etc/shadow")
    result = cli("render", "-i", inventory(tmp_path, settings(tmp_path, conf, chap=chap)), "--diff")
    assert result.exit_code == 0, result.output
    assert f"provision: n1:{conf} is a symlink to /etc/shadow; not followed" in result.stdout
    assert "root:" not in result.stdout and f"a/n1:{conf}" not in result.stdout


def test_a_fifo_or_device_is_not_opened(cli, tmp_path):
    conf = tmp_path / "ceph.conf"
    os.mkfifo(conf)  # opening it for reading would block until a writer came
    # had it been opened, the read would block until --timeout and the node would be unreachable (exit 1)
    result = cli("render", "-i", inventory(tmp_path, settings(tmp_path, conf)), "--diff", "--timeout", "30")
    assert result.exit_code == 0, result.output
    assert f"provision: n1:{conf} is a FIFO; not read" in result.stdout


def test_a_file_beside_a_secret_file_that_cannot_be_read_is_not_shown(cli, tmp_path):
    """What to hide is only known from the secret file: where it exists but cannot be read (a symlink
    loop here), the files it could be pasted into are not shown at all."""
    key = tmp_path / "client.nova.key"
    conf = tmp_path / "ceph.conf"
    conf.write_text(f"[global]\nkey = {SECRET}\n")
    inv = inventory(tmp_path, settings(tmp_path, conf, key=key))
    key.unlink()
    key.symlink_to(key)  # ELOOP: there, but unreadable
    result = cli("render", "-i", inv, "--diff")
    assert result.exit_code == 0, result.output
    assert (f"provision: n1:{conf} cannot be read: the secret file {key} cannot be read to hide its text "
            "(ELOOP: Too many levels of symbolic links); the file is not shown") in result.stdout
    assert SECRET not in result.output and f"a/n1:{conf}" not in result.stdout


@pytest.mark.parametrize("same", ["key", "chap"])
def test_a_path_equal_to_a_secret_file_is_an_input_error(cli, tmp_path, same):
    key, chap = tmp_path / "client.nova.key", tmp_path / "chap"
    conf = key if same == "key" else chap
    inv = inventory(tmp_path, settings(tmp_path, conf, key=key, chap=chap))
    result = cli("render", "-i", inv, "--diff")
    assert result.exit_code == 2, result.output
    secret_field = "storage[0].key_file" if same == "key" else "storage[1].chap.password_file"
    assert (f"{inv}: host n1: provision.storage[0].ceph_conf: names the secret file of provision.{secret_field}; "
            "a secret file is never written or shown") in result.stderr
    assert SECRET not in result.output and CHAP not in result.output


def test_a_rendered_file_at_a_secret_files_path_is_an_input_error(cli, tmp_path):
    nova = "/etc/nova/nova.conf.d/50-provision-libvirt.conf"  # rendered by the hypervisor plugin
    inv = inventory(tmp_path, settings(tmp_path, tmp_path / "ceph.conf", key=tmp_path / "k", chap=tmp_path / "c"))
    text = open(inv).read().replace(str(tmp_path / "k"), nova)
    open(inv, "w").write(text)
    result = cli("render", "-i", inv, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert (f"host n1: provision.storage[0].key_file: provision_plugins.hypervisor renders {nova}, which this field "
            "names as a secret file; a secret file is never written or shown") in result.stderr
    assert not (tmp_path / "out").exists()
