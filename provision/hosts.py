"""One grammar for addressing nodes: a testinfra host spec, parsed in one place.

``local://`` (the default), ``ssh://user@host:port``, ``paramiko://user@host:port``,
``docker://container``, ``ansible://host``. The connection itself is testinfra's;
provision writes no SSH handling of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provision.errors import InputError

SCHEMES = ("local", "ssh", "paramiko", "docker", "ansible")


@dataclass(frozen=True)
class HostSpec:
    """A node to reach: its display name, the testinfra spec and backend options.

    >>> parse_host_spec("ssh://ops@192.0.2.11:2202").scheme
    'ssh'
    """

    name: str
    spec: str
    scheme: str
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    python: str = ""  # the node's Python for the probe (ansible_python_interpreter); "" discovers it

    @property
    def is_local(self) -> bool:
        return self.scheme == "local"


@dataclass(frozen=True)
class Node:
    """A node to act on: how to reach it, its inventory groups and its validated settings.

    Empty settings mean every default (``virt_type: auto``), as without an inventory.
    """

    spec: HostSpec
    groups: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    # the inventory file that set a settings path, for messages; None without an inventory
    file_of: Callable[[tuple], Any] = field(default=lambda path: None, hash=False, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name


def parse_host_spec(text: str, *, name: str | None = None, python: str = "", **options: Any) -> HostSpec:
    """Parse ``text`` into a :class:`HostSpec`; a bad scheme is an :class:`InputError`."""
    from testinfra.backend import parse_hostspec

    text = text.strip() or "local://"
    if "://" not in text:
        raise InputError(f"host spec {text!r}: expected SCHEME://..., one of {', '.join(s + '://' for s in SCHEMES)}")
    netloc, kwargs = parse_hostspec(text)
    scheme = kwargs["connection"]
    if scheme not in SCHEMES:
        raise InputError(f"host spec {text!r}: unknown scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    if scheme != "local" and not netloc:
        raise InputError(f"host spec {text!r}: names no host")
    display = name or ("localhost" if scheme == "local" else netloc.rsplit("@", 1)[-1])
    return HostSpec(name=display, spec=text, scheme=scheme, options=options, python=python)


def connect(host: HostSpec, *, timeout: float = 10):
    """The testinfra host for ``host``; nothing is sent until a command runs."""
    import testinfra

    kwargs = dict(host.options)
    if host.scheme in ("ssh", "paramiko"):
        kwargs.setdefault("timeout", max(1, int(timeout)))
    return testinfra.get_host(host.spec, **kwargs)
