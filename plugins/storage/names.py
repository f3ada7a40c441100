"""Addresses storage entries name: a host name or an IPv4/IPv6 address, and an optional port."""

from __future__ import annotations

from provision.addresses import host_address

__all__ = ["host_address", "host_port"]


def host_port(value: str, default: int) -> tuple[str, int]:
    """'192.0.2.50:3260', '[2001:db8::1]:3260', '2001:db8::1' or 'name' -> (host, port)."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, port = value.split(":")
    else:
        host, port = value, ""
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"port {port!r} must be 1-65535")
    return host_address(host), int(port) if port else default
