"""Addresses parsed once per value: the same objects, and a bad value's error every time."""

import ipaddress

import pytest
from pydantic import TypeAdapter, ValidationError

from provision_plugins.network.addresses import IPInterface, IPv4Network, ip_network


def test_a_value_seen_before_gives_an_equal_object():
    adapter = TypeAdapter(IPv4Network)
    assert adapter.validate_python("192.0.2.0/24") == adapter.validate_python("192.0.2.0/24") == ipaddress.ip_network("192.0.2.0/24")
    assert ip_network("192.0.2.0/24") is ip_network("192.0.2.0/24")


@pytest.mark.parametrize("bad", ["192.0.2.1/24", "300.0.0.0/8"])
def test_a_bad_value_is_refused_each_time_with_pydantics_own_message(bad):
    adapter = TypeAdapter(IPv4Network)
    for _ in range(2):
        with pytest.raises(ValidationError, match="valid IPv4 network"):
            adapter.validate_python(bad)


def test_interfaces_keep_their_version_and_prefix():
    adapter = TypeAdapter(IPInterface)
    assert adapter.validate_python("2001:db8::7/64") == ipaddress.IPv6Interface("2001:db8::7/64")
    assert str(adapter.validate_python("198.51.100.7/24")) == "198.51.100.7/24"
    with pytest.raises(ValidationError):
        adapter.validate_python("198.51.100.7/33")
