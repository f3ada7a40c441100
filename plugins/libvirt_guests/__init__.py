"""The libvirt guest backend: define, start and manage guests over the libvirt API (libvirt-python).

The backend is composed of its parts: the connection and lookups, the life cycle, hot-plug,
migration and the smoke test's canary, one module each."""

from __future__ import annotations

from urllib.parse import urlparse

from provision.hookspecs import hookimpl

LIBVIRT_SCHEMES = ("qemu", "qemu+ssh", "qemu+tcp", "qemu+tls", "qemu+unix", "qemu+libssh", "qemu+libssh2")


@hookimpl
def provision_guest_backend(uri):
    if urlparse(uri).scheme not in LIBVIRT_SCHEMES:
        return None
    from provision_plugins.libvirt_guests.backend import LibvirtBackend

    return LibvirtBackend(uri)
