"""The settings schema of storage.rbd (imported only when an inventory is read)."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, field_validator

from provision.fields import ConfWord, FilePath, IniPath, LibvirtName
from provision.settings import StrictModel
from provision_plugins.storage.ceph import CEPH_CONF, MON_PORT
from provision_plugins.storage.names import host_port


class RbdPool(StrictModel):
    type: Literal["rbd"]
    name: LibvirtName
    pool: ConfWord
    monitors: Annotated[list[str], Field(min_length=1)]
    user: ConfWord
    secret_uuid: UUID
    key_file: IniPath  # read on the node when applied; its path is written into ceph.conf, never the key
    ceph_conf: FilePath = CEPH_CONF

    @field_validator("monitors")
    @classmethod
    def _monitors(cls, value):
        for monitor in value:
            host_port(monitor, MON_PORT)
        return value
