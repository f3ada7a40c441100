"""The libvirt guest backend, as one object: each part is a module of its own."""

from __future__ import annotations

from provision_plugins.libvirt_guests.canary import Canary
from provision_plugins.libvirt_guests.connection import Connection
from provision_plugins.libvirt_guests.hotplug import HotPlug
from provision_plugins.libvirt_guests.lifecycle import LifeCycle
from provision_plugins.libvirt_guests.migration import Migration


class LibvirtBackend(LifeCycle, HotPlug, Migration, Canary, Connection):
    """provision's GuestBackend over libvirt-python, for one URI."""
