"""Storage software on the node (tools, libvirt backends, QEMU block drivers), from recorded facts."""

import pytest

from provision_plugins.storage.iscsi import iscsi_software
from provision_plugins.storage.lvm import lvm_software
from provision_plugins.storage.nfs import nfs_software
from provision_plugins.storage.rbd import rbd_software
from tests.nodes import healthy_node, installed


def settings(*entries, libvirt="host", images_type="default"):
    return {"hypervisor": {"libvirt": libvirt, "images_type": images_type}, "storage": list(entries)}


NO_RBD_MODULE = {"globs": {"/usr/lib/*/qemu/*.so": ["/usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so"]}}


def test_nfs_without_mount_nfs_fails_naming_the_package():
    node = healthy_node(**{"storage.nfs": installed(["mount.nfs"], ["fs"], missing=("mount.nfs",))})
    result = nfs_software(node, settings({"type": "nfs"}))
    assert result.status == "fail"
    assert result.message == "NFS pool software: missing mount.nfs (the inventory needs it)"
    assert "apt-get install nfs-common" in result.remedy


def test_lvm_is_needed_for_nova_lvm_images_alone():
    node = healthy_node(**{"storage.lvm": installed(["pvcreate", "vgcreate", "lvcreate"], ["logical"], missing=("lvcreate", "logical"))})
    result = lvm_software(node, settings(images_type="lvm"))
    assert result.status == "fail"
    assert result.message == "LVM software: missing lvcreate, libvirt_storage_backend_logical.so (the inventory needs it)"


def test_rbd_fails_when_the_modular_qemu_lacks_its_rbd_driver():
    node = healthy_node(**{"qemu.modules": NO_RBD_MODULE})
    result = rbd_software(node, settings({"type": "rbd"}))
    assert result.status == "fail"
    assert result.message == "Ceph RBD software: missing QEMU's rbd block driver (the inventory needs it)"
    assert "qemu-block-extra" in result.remedy
    assert "block-rbd.so is not installed" in result.evidence["QEMU rbd driver"]


def test_rbd_images_need_it_without_an_rbd_pool():
    assert rbd_software(healthy_node(**{"qemu.modules": NO_RBD_MODULE}), settings(images_type="rbd")).status == "fail"


def test_iscsi_pools_of_both_kinds_are_checked_and_only_the_failing_kind_gets_a_remedy():
    node = healthy_node(**{"storage.iscsi": installed(["iscsiadm"], ["iscsi", "iscsi-direct"], missing=("iscsi-direct",))})
    result = iscsi_software(node, settings({"type": "iscsi", "direct": False}, {"type": "iscsi", "direct": True}))
    assert result.status == "fail"
    assert result.message == ("iSCSI initiator software: installed; "
                              "iscsi-direct software: missing libvirt_storage_backend_iscsi-direct.so (the inventory needs it)")
    assert result.remedy.startswith("apt-get install libvirt-daemon-driver-storage-iscsi-direct qemu-block-extra")


def test_iscsi_direct_alone_does_not_need_iscsiadm():
    node = healthy_node(**{"storage.iscsi": installed(["iscsiadm"], ["iscsi", "iscsi-direct"], missing=("iscsiadm",))})
    result = iscsi_software(node, settings({"type": "iscsi", "direct": True}))
    assert (result.status, result.message) == ("pass", "iscsi-direct software: installed")


@pytest.mark.parametrize("check", [nfs_software, lvm_software, rbd_software, iscsi_software])
def test_with_libvirt_in_a_container_the_host_needs_none_of_it(check):
    kind = check.__name__.split("_")[0]
    result = check(healthy_node(), settings({"type": kind, "direct": False}, libvirt="container"))
    assert result.status == "skip"
    assert result.message.startswith("not needed: libvirt runs in a container, whose image brings it")


@pytest.mark.parametrize("check", [nfs_software, lvm_software, rbd_software, iscsi_software])
def test_unused_storage_types_are_skipped(check):
    result = check(healthy_node(), settings())
    assert result.status == "skip"
    assert result.message.startswith(f"not needed: no {check.__name__.split('_')[0]} storage in the inventory")
