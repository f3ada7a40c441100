import pytest

from tests.applynode import OverlayNode


@pytest.fixture
def node(tmp_path, kvm_permissions):
    """A node of its own for each test (see tests/applynode.py); everything in it ends with the test."""
    node = OverlayNode(tmp_path / "node")
    yield node
    node.stop()
    assert not node.processes()
