"""nova's minimum versions for the libvirt driver, in one place.

From nova's libvirt driver (MIN_LIBVIRT_VERSION / MIN_QEMU_VERSION) as of the 2025.x releases.
"""

MIN_LIBVIRT = (8, 0, 0)
MIN_QEMU = (6, 2, 0)


def parse_version(text: str) -> tuple[int, ...] | None:
    """The first dotted version in ``text``: ``'QEMU emulator version 7.2.22 (Debian)'`` -> (7, 2, 22)."""
    import re

    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    return tuple(int(p) for p in match.groups(default="0")) if match else None


def dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))
