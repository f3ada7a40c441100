"""The settings schema of network.bridge (imported only when an inventory is read)."""

from __future__ import annotations

from pydantic import Field

from provision.settings import StrictModel
from provision_plugins.network.addresses import IPInterface
from provision_plugins.network.fields import IfName


class Bridge(StrictModel):
    name: IfName
    interfaces: list[IfName] = Field(default_factory=list)
    addresses: list[IPInterface] = Field(default_factory=list)
    mtu: int | None = Field(default=None, ge=68, le=65535)
    stp: bool = False
