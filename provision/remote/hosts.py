"""One grammar for addressing nodes: a host spec, parsed in one place into its parts.

``local://`` (the default), ``ssh://user@host:port``, ``paramiko://user@host:port``,
``docker://container``, ``ansible://host`` (resolved through Ansible's configured inventory when the
nodes are selected). The connection is testinfra's, built from the parsed parts (never from a URL a
value could add options to); ssh and docker run from argument vectors, never through a shell.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from provision.errors import InputError

SCHEMES = ("local", "ssh", "paramiko", "docker", "ansible")


@dataclass(frozen=True)
class HostSpec:
    """A node to reach: its display name and the validated parts of its connection.

    >>> parse_host_spec("ssh://ops@192.0.2.11:2202").spec
    'ssh://ops@192.0.2.11:2202'
    """

    name: str
    scheme: str
    address: str = ""  # a host name or an IP address (a container for docker://)
    user: str = ""
    port: int | None = None
    identity_file: str = ""
    ssh_args: tuple[str, ...] = ()  # ssh options, one word each (never given to a shell)
    control_path: str = ""  # ssh's ControlPath: one master connection per node
    python: tuple[str, ...] = ()  # the node's Python for the probe (ansible_python_interpreter); () discovers it
    problem: str = ""  # why the node cannot be reached from here (a key file missing): it is unreachable, as in Ansible

    @property
    def is_local(self) -> bool:
        return self.scheme == "local"

    @property
    def netloc(self) -> str:
        """``user@host:port`` (an IPv6 address in brackets), as URLs write it."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.user + '@' if self.user else ''}{host}{':' + str(self.port) if self.port else ''}"

    @property
    def spec(self) -> str:
        """The spec as a user writes it: ``ssh://ops@192.0.2.11:2202``."""
        return "local://" if self.is_local else f"{self.scheme}://{self.netloc}"


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


def split_netloc(netloc: str) -> tuple[str, str, str]:
    """'ops@[2001:db8::1]:22' -> ('ops', '2001:db8::1', '22'); the parts are not checked here."""
    user, _, hostport = netloc.rpartition("@")
    if hostport.startswith("["):
        address, bracket, rest = hostport[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError("an IPv6 address in [...] must be followed by nothing or :PORT")
        port = rest[1:]
    elif hostport.count(":") == 1:
        address, port = hostport.split(":")
    else:
        address, port = hostport, ""
    return user, address, port


def parse_host_spec(text: str, *, name: str | None = None) -> HostSpec:
    """Parse ``text`` (``-H``) into a :class:`HostSpec`; anything that is not a scheme, a user, a host
    and a port is an :class:`InputError`."""
    from provision.addresses import container_name, host_address, port_number, user_name

    text = text.strip() or "local://"
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise InputError(f"host spec {text!r}: expected SCHEME://..., one of {', '.join(s + '://' for s in SCHEMES)}")
    if scheme not in SCHEMES:
        raise InputError(f"host spec {text!r}: unknown scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    if scheme == "local":
        if rest:
            raise InputError(f"host spec {text!r}: local:// names no host")
        return HostSpec(name=name or "localhost", scheme="local")
    if not rest:
        raise InputError(f"host spec {text!r}: names no host")
    if any(c in rest for c in "?#/") or any(not c.isprintable() or c.isspace() for c in rest):
        raise InputError(f"host spec {text!r}: only [USER@]HOST[:PORT] may follow {scheme}:// "
                         "(no options, paths, spaces or control characters; give ssh options in an inventory)")
    try:
        user, address, port = split_netloc(rest)
        if scheme == "docker":
            if port:
                raise ValueError("a container has no port")
            address = container_name(address)
        else:
            address = host_address(address)
        user = user_name(user) if user else ""
        number = port_number(port) if port else None
    except ValueError as exc:
        raise InputError(f"host spec {text!r}: {exc}") from None
    spec = HostSpec(name=name or "", scheme=scheme, address=address, user=user, port=number)
    return spec if name else replace(spec, name=spec.netloc.rpartition("@")[2])


def private_folder(name: str, base: str | None = None) -> str:
    """``BASE/NAME-UID`` (BASE: the temporary folder) when this user made it and nobody else can enter
    it; otherwise (someone else made it first, or opened it to others) a new private folder. Never one
    another user controls."""
    import stat
    import tempfile

    uid = os.getuid()
    base = base or tempfile.gettempdir()
    folder = f"{base}/{name}-{uid}"
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return tempfile.mkdtemp(prefix=f"{name}-{uid}-", dir=base)
    st = os.lstat(folder)
    if stat.S_ISDIR(st.st_mode) and st.st_uid == uid and not st.st_mode & 0o077:
        return folder
    return tempfile.mkdtemp(prefix=f"{name}-{uid}-", dir=base)  # 0700, ours: the old one is not trusted
