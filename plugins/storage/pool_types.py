"""Field types storage entries share: a libvirt pool name and an absolute path (pydantic)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator


def _pool_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}", value):
        raise ValueError("must be 1-64 letters, digits, '_', '.', '+' or '-', starting with a letter or digit")
    return value


PoolName = Annotated[str, AfterValidator(_pool_name)]


def _absolute(value: str) -> str:
    if not value.startswith("/") or "\0" in value or "\n" in value:
        raise ValueError("must be an absolute path")
    if any(part in (".", "..") for part in value.split("/")):
        raise ValueError("must be an absolute path without '.' or '..' parts")
    return value


AbsPath = Annotated[str, AfterValidator(_absolute)]
