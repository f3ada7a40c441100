"""The settings schema of storage.lvm (imported only when an inventory is read)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from provision.fields import AbsPath, LibvirtName
from provision.settings import StrictModel


class LvmPool(StrictModel):
    type: Literal["lvm"]
    name: LibvirtName  # the volume group's name too
    devices: Annotated[list[AbsPath], Field(min_length=1)]
