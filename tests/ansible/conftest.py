import pytest

from tests.testhosts import HostNetwork


@pytest.fixture
def net_hosts():
    with HostNetwork("pvans", "10.215.0") as net:
        yield net
