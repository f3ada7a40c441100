"""Interface names: 1-15 letters, digits, '_', '.' or '-'. The kernel takes more, but the names are
written into networkd ``[Match] Name=`` (where ``*?[]!`` are glob syntax), nftables strings (``"``,
``\\``), netplan YAML keys and libvirt XML: with these characters they mean just the interface."""

from __future__ import annotations

import re
from functools import lru_cache

from provision.api import LIBVIRT_DIR

IFNAMSIZ = 16  # including the terminating NUL
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


@lru_cache(maxsize=4096)  # a fleet names the same few interfaces on every host
def ifname(value: str) -> str:
    if not value or len(value.encode()) >= IFNAMSIZ:
        raise ValueError(f"interface name must be 1-{IFNAMSIZ - 1} bytes (got {len(value.encode())})")
    if not NAME.fullmatch(value):
        raise ValueError("interface name must be letters, digits, '_', '.' or '-', starting with a letter, digit "
                         "or '_' (no glob, quote or comment characters)")
    return value


def network_file(name: str) -> str:
    """Where a libvirt network's XML is rendered."""
    return f"{LIBVIRT_DIR}/network-{name}.xml"
