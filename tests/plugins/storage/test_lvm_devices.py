"""LVM devices on the local node, checked with pyudev against real loop devices."""

import subprocess

import pytest

from provision_plugins.storage.lvm import device_problem


@pytest.fixture
def loop_device(tmp_path):
    image = tmp_path / "disk.img"
    image.write_bytes(b"\0" * 64 * 1024 * 1024)
    dev = subprocess.run(["losetup", "-f", "--show", str(image)], check=True, capture_output=True, text=True).stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


def test_a_clean_loop_device_can_be_a_physical_volume(loop_device):
    assert device_problem(loop_device) is None


def test_a_device_with_a_filesystem_is_refused(loop_device):
    subprocess.run(["mkfs.ext4", "-q", loop_device], check=True)
    assert device_problem(loop_device) == "has a ext4 signature"


def test_a_device_that_is_already_a_physical_volume_is_refused(loop_device):
    subprocess.run(["pvcreate", "-q", "-y", loop_device], check=True, capture_output=True)
    try:
        assert device_problem(loop_device) == "has a LVM2_member signature"
    finally:
        subprocess.run(["pvremove", "-q", "-y", loop_device], check=False, capture_output=True)


@pytest.mark.parametrize(("path", "words"), [("/dev/null", "is not a block device"),
                                             ("/dev/no-such-disk", "is not a block device")])
def test_not_a_block_device(path, words):
    assert words in device_problem(path)


def test_render_refuses_a_formatted_local_device_naming_host_and_field(cli, tmp_path, loop_device):
    import yaml

    subprocess.run(["mkfs.ext4", "-q", loop_device], check=True)
    inv = tmp_path / "site.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"n1": {"ansible_connection": "local", "provision": {
        "hypervisor": {"virt_type": "qemu"}, "storage": [{"name": "vg", "type": "lvm", "devices": [loop_device]}]}}}}}))
    result = cli("render", "-i", str(inv), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert f"host n1: provision.storage[0].devices[0]: {loop_device} has a ext4 signature" in result.stderr
