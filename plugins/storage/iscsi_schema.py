"""The settings schema of storage.iscsi (imported only when an inventory is read)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, field_validator

from provision.fields import AbsPath, LibvirtName, Text
from provision.settings import StrictModel
from provision_plugins.storage.names import host_port

# the pattern libvirt's storage pool schema gives initiator IQNs (RFC 3720 names)
IQN = re.compile(r"iqn\.[0-9]{4}-(0[1-9]|1[0-2])\.[a-zA-Z0-9.\-]+(:.+)?")


def _iqn(value: str) -> str:
    if not IQN.fullmatch(value):
        raise ValueError("must be an IQN like iqn.2026-01.com.example:name (iqn.YYYY-MM.reversed.domain[:id])")
    return value


Iqn = Annotated[str, AfterValidator(_iqn)]


class Chap(StrictModel):
    username: Text
    password_file: AbsPath  # read on the node when applied; never rendered


class IscsiPool(StrictModel):
    type: Literal["iscsi"]
    name: LibvirtName
    portal: str
    target: Iqn
    initiator: Iqn
    chap: Chap | None = None
    direct: bool = False  # an iscsi-direct pool: QEMU's libiscsi, no kernel initiator

    @field_validator("portal")
    @classmethod
    def _portal(cls, value):
        host_port(value, 3260)
        return value
