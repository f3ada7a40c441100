"""Interface names as the kernel takes them: 1-15 bytes, no '/', ':' or whitespace."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator

IFNAMSIZ = 16  # including the terminating NUL


@lru_cache(maxsize=4096)  # a fleet names the same few interfaces on every host
def _ifname(value: str) -> str:
    if not value or len(value.encode()) >= IFNAMSIZ:
        raise ValueError(f"interface name must be 1-{IFNAMSIZ - 1} bytes (got {len(value.encode())})")
    if any(c in value for c in "/:") or any(c.isspace() for c in value) or value in (".", ".."):
        raise ValueError("interface name must not contain '/', ':' or whitespace")
    return value


IfName = Annotated[str, AfterValidator(_ifname)]
