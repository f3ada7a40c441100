import pytest

from tests.testhosts import HostNetwork


class AnsibleHosts(HostNetwork):
    """Test hosts whose inventory names the node's Python, as a site's does where discovery could pick
    another (this machine's root has pyenv shims of Pythons that are not installed on its PATH)."""

    def inventory_data(self, groups=None, host_vars=None) -> dict:
        data = super().inventory_data(groups, host_vars)
        data["all"]["vars"]["ansible_python_interpreter"] = "/usr/bin/python3"
        return data


@pytest.fixture
def net_hosts():
    with AnsibleHosts("pvans", "10.215.0") as net:
        yield net
