"""LVM devices on the local node, checked with pyudev against real loop devices."""

import subprocess

import pytest

from provision_plugins.storage.lvm import device_problem
from tests.unprivileged import as_nobody


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


def test_a_physical_volume_of_the_pools_own_volume_group_is_taken(loop_device):
    """As an earlier apply left it: pool-build made the device a PV of the pool's volume group."""
    subprocess.run(["vgcreate", "-q", "-y", "pvtest-own", loop_device], check=True, capture_output=True)
    try:
        assert device_problem(loop_device, "pvtest-own") is None
        assert device_problem(loop_device, "other-vg") == "has a LVM2_member signature"
    finally:
        subprocess.run(["vgremove", "-q", "-f", "pvtest-own"], check=False, capture_output=True)
        subprocess.run(["pvremove", "-q", "-y", loop_device], check=False, capture_output=True)


def test_a_mounted_device_is_refused_naming_the_mount_point(loop_device, tmp_path):
    subprocess.run(["mkfs.ext4", "-q", loop_device], check=True)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", loop_device, str(mnt)], check=True)
    try:
        assert device_problem(loop_device) == f"is mounted at {mnt}"
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_a_loop_device_with_no_file_is_refused_as_empty():
    free = subprocess.run(["losetup", "-f"], check=True, capture_output=True, text=True).stdout.strip()
    assert device_problem(free) == "is empty (size 0: no medium, or a loop device with no file attached)"


def test_a_device_blkid_cannot_read_is_not_taken_for_a_clean_one(loop_device):
    """As a user who may not open the device (provision render run unprivileged on the node)."""
    found = as_nobody(lambda: device_problem(loop_device))
    assert found == f"cannot be read to look for a filesystem or LVM signature (error: {loop_device}: Permission denied)"


@pytest.mark.parametrize(("path", "words"), [("/dev/null", "is not a block device"),
                                             ("/dev/no-such-disk", "is not a block device")])
def test_not_a_block_device(path, words):
    assert words in device_problem(path)


@pytest.mark.parametrize("mode", ["--out", "--diff"])
def test_render_refuses_a_formatted_local_device_naming_file_host_and_field(cli, tmp_path, loop_device, mode):
    import yaml

    subprocess.run(["mkfs.ext4", "-q", loop_device], check=True)
    inv = tmp_path / "site.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"n1": {"ansible_connection": "local", "provision": {
        "virt_type": "qemu", "storage": [{"name": "vg", "type": "lvm", "devices": [loop_device, "/dev/no-such-disk"]}]}}}}}))
    result = cli("render", "-i", str(inv), *([mode, str(tmp_path / "out")] if mode == "--out" else [mode]))
    assert result.exit_code == 2
    assert f"{inv}: host n1: provision.storage[0].devices[0]: {loop_device} has a ext4 signature" in result.stderr
    assert "provision.storage[0].devices[1]: /dev/no-such-disk is not a block device" in result.stderr  # all at once
    assert not (tmp_path / "out").exists()  # nothing written, not even the folder
