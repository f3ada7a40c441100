"""The settings schema of storage.nfs (imported only when an inventory is read)."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from provision.fields import AbsPath, FolderTarget, LibvirtName
from provision.settings import StrictModel
from provision_plugins.storage.names import host_address


class NfsPool(StrictModel):
    type: Literal["nfs"]
    name: LibvirtName
    server: str
    export: AbsPath
    mountpoint: FolderTarget
    nfs_version: Literal["3", "4", "4.0", "4.1", "4.2"] | None = None

    @field_validator("nfs_version", mode="before")
    @classmethod
    def _version_text(cls, value):
        return str(value) if isinstance(value, int | float) else value  # YAML reads 4.1 as a number

    @field_validator("export")
    @classmethod
    def _export(cls, value):
        if "\\" in value:  # C escapes in unit files (and a line continuation at the end)
            raise ValueError("must not contain '\\' (it is written into a systemd mount unit)")
        return value

    @field_validator("server")
    @classmethod
    def _server(cls, value):
        return host_address(value)
