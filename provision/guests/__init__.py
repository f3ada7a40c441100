"""Guests: what a guest is, its domain XML, and the backend protocol that starts and manages it.

The backend is a plugin (``provision_guest_backend``); the built-in one drives libvirt.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from provision.errors import InputError, ProvisionError

DEFAULT_URI = "qemu:///system"
CONSOLE_LOG_DIR = "/var/log/libvirt/qemu"
MACHINES = {"x86_64": "pc", "i686": "pc", "aarch64": "virt", "s390x": "s390-ccw-virtio", "ppc64le": "pseries"}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class GuestError(ProvisionError):
    """A guest operation failed on the node (exit 1); the text says what and what was rolled back."""


@dataclass(frozen=True)
class DiskSpec:
    pool: str
    volume: str
    target: str
    format: str = "qcow2"


@dataclass(frozen=True)
class GuestSpec:
    """Everything needed to define one guest."""

    name: str
    virt_type: str
    arch: str = "x86_64"  # the node's, from libvirt's capabilities
    memory_mib: int = 256
    vcpus: int = 1
    max_vcpus: int = 0
    max_memory_mib: int = 0
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str = ""
    image: str | None = None
    pool: str = "default"
    networks: tuple[str, ...] = ()
    new_disks: tuple[tuple[str, int], ...] = ()  # (pool, bytes) for --disk POOL:SIZE
    disks: tuple[DiskSpec, ...] = ()  # filled in by the backend once volumes exist

    def __post_init__(self) -> None:
        if not NAME.fullmatch(self.name):
            raise InputError(f"guest name {self.name!r}: 1-64 letters, digits, '_', '.', '-', starting with a letter or digit")
        if self.virt_type not in ("kvm", "qemu"):
            raise InputError(f"virt_type {self.virt_type!r}: must be kvm or qemu")
        if bool(self.image) == bool(self.kernel):
            raise InputError("give --image PATH, or --kernel PATH with --initrd PATH")
        if self.kernel and not self.initrd:
            raise InputError("--kernel needs --initrd")
        if self.memory_mib < 16 or self.vcpus < 1:
            raise InputError("--memory must be at least 16 MiB and --vcpus at least 1")

    @property
    def console_log(self) -> str:
        return f"{CONSOLE_LOG_DIR}/{self.name}-console.log"

    def template_values(self) -> dict[str, Any]:
        values = asdict(self)
        values.update(console_log=self.console_log, max_vcpus=max(self.max_vcpus, self.vcpus),
                      max_memory_mib=max(self.max_memory_mib, self.memory_mib),
                      machine=MACHINES.get(self.arch, "pc"))
        return values


def parse_size(text: str) -> int:
    """'512M', '2G', '1024' (MiB) -> bytes."""
    match = re.fullmatch(r"(\d+)\s*([KMGT]?)i?B?", text.strip(), re.I)
    if not match:
        raise InputError(f"size {text!r}: expected a number with K, M, G or T")
    unit = {"": 1024**2, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}[match.group(2).upper()]
    return int(match.group(1)) * unit


def parse_disk(text: str) -> tuple[str, int]:
    pool, sep, size = text.partition(":")
    if not sep or not pool:
        raise InputError(f"--disk {text!r}: expected POOL:SIZE, e.g. default:1G")
    return pool, parse_size(size)


def render_domain_xml(spec: GuestSpec) -> str:
    """The domain XML from ``templates/libvirt/domain.xml.j2``, validated against libvirt's schema."""
    from provision.templating import template

    xml = template((), "libvirt/domain.xml.j2").render(guest=spec.template_values())
    problem = schema_problem(xml)
    if problem:
        raise GuestError(f"the domain XML for {spec.name} does not validate against libvirt's schema: {problem}")
    return xml


def schema_problem(xml: str) -> str | None:
    """What virt-xml-validate (libvirt's RelaxNG schemas) says is wrong, or None."""
    with tempfile.NamedTemporaryFile("w", suffix=".xml") as fh:
        fh.write(xml)
        fh.flush()
        try:
            proc = subprocess.run(["virt-xml-validate", fh.name, "domain"], capture_output=True, text=True)
        except FileNotFoundError:
            return "virt-xml-validate is not installed (apt-get install libvirt-clients libxml2-utils)"
    return None if proc.returncode == 0 else (proc.stderr or proc.stdout).strip()[-500:]


@dataclass(frozen=True)
class GuestInfo:
    name: str
    state: str
    virt_type: str
    vcpus: int
    memory_mib: int
    persistent: bool = True
    disks: list[dict] = field(default_factory=list)
    nics: list[dict] = field(default_factory=list)
    console_log: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Change:
    """What a state-changing operation did: ``how`` is e.g. 'live', 'next boot', 'graceful', 'forced'."""

    guest: str
    action: str
    how: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.guest}: {self.action} ({self.how}){': ' + self.detail if self.detail else ''}"


class GuestBackend(Protocol):
    """What a guest backend offers; every method raises GuestError or InputError with a clear message."""

    uri: str

    def host_arch(self) -> str: ...
    def create(self, spec: GuestSpec) -> GuestInfo: ...
    def list(self) -> list[GuestInfo]: ...
    def info(self, name: str) -> GuestInfo: ...
    def start(self, name: str) -> Change: ...
    def shutdown(self, name: str, timeout: float) -> Change: ...
    def destroy(self, name: str) -> Change: ...
    def pause(self, name: str) -> Change: ...
    def resume(self, name: str) -> Change: ...
    def save(self, name: str, path: str) -> Change: ...
    def restore(self, path: str) -> Change: ...
    def undefine(self, name: str, remove_storage: bool) -> Change: ...
    def attach_disk(self, name: str, pool: str, size: int) -> Change: ...
    def detach_disk(self, name: str, target: str) -> Change: ...
    def attach_nic(self, name: str, network: str) -> Change: ...
    def detach_nic(self, name: str, mac: str) -> Change: ...
    def set_vcpus(self, name: str, count: int) -> Change: ...
    def set_memory(self, name: str, mib: int) -> Change: ...
    def migrate(self, name: str, to_uri: str, live: bool | None) -> Change: ...
    def boot_canary(self, canary: Any, virt_type: str, marker: str, timeout: float, disks: str = "",
                    cmdline: str = "") -> tuple[float, str]: ...
    def storage_canary(self, canary: Any, virt_type: str, pools: Any, marker: str,
                       timeout: float) -> dict[str, dict]: ...
    def close(self) -> None: ...


def open_backend(uri: str, hooks) -> GuestBackend:
    backend = hooks.guest_backend(uri)
    if backend is None:
        raise InputError(f"--connect {uri!r}: no plugin manages guests at this URI")
    return backend
