"""The settings schema of network.vlan (imported only when an inventory is read)."""

from __future__ import annotations

from pydantic import Field

from provision.settings import StrictModel
from provision_plugins.network.fields import IfName


class Vlan(StrictModel):
    name: IfName
    id: int = Field(ge=1, le=4094)
    link: IfName
    bridge: IfName | None = None
