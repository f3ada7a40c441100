"""The settings schema of network.nat (imported only when an inventory is read)."""

from __future__ import annotations

from typing import Literal

from provision.fields import LibvirtName
from provision.settings import StrictModel
from provision_plugins.network.addresses import IPv4Address, IPv4Network
from provision_plugins.network.fields import IfName


class DhcpRange(StrictModel):
    start: IPv4Address
    end: IPv4Address


class Nat(StrictModel):
    name: LibvirtName
    bridge: IfName
    subnet: IPv4Network
    gateway: IPv4Address
    dhcp: DhcpRange | None = None
    outbound: IfName | None = None
    firewall: Literal["libvirt", "nftables"] = "libvirt"  # who writes the masquerade rules
