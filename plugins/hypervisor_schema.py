"""The hypervisor part of the provision settings (imported only when an inventory is read)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from provision.fields import ConfPath, ConfWord
from provision.settings import StrictModel


class TlsFiles(StrictModel):
    """Certificate paths for libvirtd's TLS listener (libvirt's defaults)."""

    ca_file: ConfPath = "/etc/pki/CA/cacert.pem"
    cert_file: ConfPath = "/etc/pki/libvirt/servercert.pem"
    key_file: ConfPath = "/etc/pki/libvirt/private/serverkey.pem"


class HypervisorSettings(StrictModel):
    virt_type: Literal["auto", "kvm", "qemu"] = "auto"
    cpu_mode: Literal["auto", "host-model", "host-passthrough", "custom", "none"] = "auto"
    cpu_models: list[ConfWord] = Field(default_factory=list)
    libvirt: Literal["host", "container"] = "host"
    images_type: Literal["default", "qcow2", "raw", "lvm", "rbd"] = "default"
    # remote management of libvirtd: ssh and the unix socket need no daemon settings
    remote: Literal["none", "ssh", "unix", "tcp", "tls"] = "none"
    tls: TlsFiles = Field(default_factory=TlsFiles)
