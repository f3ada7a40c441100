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


def version_check(answer: dict, *, product: str, minimum: tuple[int, ...], remedy: str):
    """The check of a ``PROGRAM --version`` answer (or of the version libvirt's capabilities cache
    holds for the program, where it is still valid) against nova's minimum for it."""
    from provision.results import failed, passed

    if "cache" in answer:
        version = parse_version(answer["version"])
        evidence = {answer["program"]: f"{answer['version']} (libvirt's capabilities cache, {answer['cache']})"}
    else:
        text = answer["stdout"].strip()
        first = text.splitlines()[0] if text else ""
        version = parse_version(first)
        evidence = {f"{answer['program']} --version": first}
    if version is None:
        return failed(f"cannot read {product}'s version", evidence, f"check the {product} installation")
    if version < minimum:
        return failed(f"{product} {dotted(version)} is older than nova's minimum {dotted(minimum)}", evidence, remedy)
    return passed(f"{product} {dotted(version)} >= {dotted(minimum)}", evidence)
