"""The ``pci`` part of the provision settings (imported only when an inventory is read)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from provision.fields import ConfWord
from provision.settings import StrictModel

# four hex digits, as nova's device_spec and alias take them (no 0x); stored lower-case
PciId = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{4}$"), AfterValidator(str.lower)]
# one exact address, domain:bus:slot.function (nova also takes globs and regexes; provision names devices)
PciAddress = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[01][0-9a-fA-F]\.[0-7]$"),
                       AfterValidator(str.lower)]


class PciDevice(StrictModel):
    """One device (or kind of device) nodes hand to guests: by vendor and product id, by address, or both."""

    alias: ConfWord | None = None
    vendor_id: PciId | None = None
    product_id: PciId | None = None
    address: PciAddress | None = None
    device_type: Literal["type-PCI", "type-PF", "type-VF"] = "type-PCI"
    numa_policy: Literal["required", "legacy", "preferred", "socket"] | None = None
    physical_network: ConfWord | None = None

    @model_validator(mode="after")
    def _names_a_device(self):
        if not self.address and not (self.vendor_id and self.product_id):
            raise ValueError("name the device by vendor_id and product_id, or by address")
        if self.alias and not (self.vendor_id and self.product_id):
            raise ValueError("an alias needs vendor_id and product_id (nova's alias matches by them)")
        if self.numa_policy and not self.alias:
            raise ValueError("numa_policy belongs to an alias: give the entry an alias")
        return self


class PciSettings(StrictModel):
    devices: list[PciDevice] = Field(default_factory=list)
