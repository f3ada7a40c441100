"""The hypervisor part of the settings: wanted virt_type, CPU mode and models, where libvirt runs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from provision.hookspecs import hookimpl
from provision.settings import StrictModel


class HypervisorSettings(StrictModel):
    virt_type: Literal["auto", "kvm", "qemu"] = "auto"
    cpu_mode: Literal["auto", "host-model", "host-passthrough", "custom", "none"] = "auto"
    cpu_models: list[str] = Field(default_factory=list)
    libvirt: Literal["host", "container"] = "host"


@hookimpl
def provision_settings_schema():
    return {"hypervisor": (HypervisorSettings, Field(default_factory=HypervisorSettings))}


@hookimpl
def provision_validate_settings(settings):
    """nova's rule: cpu_models only with cpu_mode custom, and custom needs at least one model."""
    hv = settings.get("hypervisor") or {}
    if hv.get("cpu_models") and hv.get("cpu_mode") != "custom":
        return [(("hypervisor", "cpu_models"), f"only allowed with cpu_mode custom (cpu_mode is {hv.get('cpu_mode')!r})")]
    if hv.get("cpu_mode") == "custom" and not hv.get("cpu_models"):
        return [(("hypervisor", "cpu_models"), "cpu_mode custom needs at least one CPU model")]
    return []
