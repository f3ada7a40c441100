"""The settings schema of network.nat (imported only when an inventory is read)."""

from __future__ import annotations

import ipaddress
from typing import Literal


from provision.settings import StrictModel
from provision_plugins.network.names import IfName
from provision_plugins.storage.pool_types import PoolName


class DhcpRange(StrictModel):
    start: ipaddress.IPv4Address
    end: ipaddress.IPv4Address


class Nat(StrictModel):
    name: PoolName
    bridge: IfName
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    dhcp: DhcpRange | None = None
    outbound: IfName | None = None
    firewall: Literal["libvirt", "nftables"] = "libvirt"  # who writes the masquerade rules
