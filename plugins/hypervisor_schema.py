"""The hypervisor part of the provision settings (imported only when an inventory is read)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from provision.fields import ConfPath, ConfWord
from provision.settings import StrictModel


class TlsFiles(StrictModel):
    """Certificate paths for libvirtd's TLS listener (libvirt's defaults)."""

    ca_file: ConfPath = "/etc/pki/CA/cacert.pem"
    cert_file: ConfPath = "/etc/pki/libvirt/servercert.pem"
    key_file: ConfPath = "/etc/pki/libvirt/private/serverkey.pem"


def _moved(value: object) -> None:
    raise ValueError("moved to provision.virt_type (a core setting now)")


class HypervisorSettings(StrictModel):
    # until 0.x inventories are migrated: the old place names the new one instead of "unknown key"
    virt_type: Annotated[None, BeforeValidator(_moved)] = Field(default=None, exclude=True)
    cpu_mode: Literal["auto", "host-model", "host-passthrough", "custom", "none"] = "auto"
    cpu_models: list[ConfWord] = Field(default_factory=list)
    libvirt: Literal["host", "container"] = "host"
    nested: bool = False  # guests may run KVM themselves: kvm_intel/kvm_amd nested=1 (the kvm plugin)
    images_type: Literal["default", "qcow2", "raw", "lvm", "rbd"] = "default"
    # remote management of libvirtd: ssh and the unix socket need no daemon settings
    remote: Literal["none", "ssh", "unix", "tcp", "tls"] = "none"
    tls: TlsFiles = Field(default_factory=TlsFiles)
