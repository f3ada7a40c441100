import pytest

from tests.applynode import OverlayNode


@pytest.fixture
def node(tmp_path, kvm_permissions):
    """A node of its own for each test (see tests/applynode.py); everything in it ends with the test."""
    node = OverlayNode(tmp_path / "node")
    yield node
    node.stop()
    assert not node.processes()


KEY_FILE = "/etc/ceph/client.nova.key"


@pytest.fixture
def cluster(node, tmp_path):
    """A real Ceph cluster (tests/cephcluster.py) in the node's namespaces (it ends with the node), with
    a pool 'vms' and nova's key in KEY_FILE on the node."""
    from tests.cephcluster import CephCluster, wait_healthy

    ceph = CephCluster(tmp_path / "ceph", node.run)
    ceph.create_pool("vms")
    wait_healthy(ceph)
    node.write(KEY_FILE, ceph.client_key("nova", "vms"))
    return ceph


@pytest.fixture
def loop(tmp_path):
    """A 64 MiB loop device (a file of the test's), detached afterwards."""
    import subprocess

    image = tmp_path / "pv.img"
    with open(image, "wb") as fh:
        fh.truncate(64 << 20)
    device = subprocess.run(["losetup", "--find", "--show", str(image)], capture_output=True, text=True,
                            check=True).stdout.strip()
    yield device
    subprocess.run(["losetup", "-d", device], capture_output=True)
