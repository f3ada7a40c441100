"""What a host, a user, a port and an ssh option can be: values from an inventory are checked here
before they reach a connection, a folder name or a rendered file, so none of them can carry
syntax (a URL query, an ssh option, a new line in a config file).

>>> host_address("192.0.2.1"), host_address("cmp1.example.org")
('192.0.2.1', 'cmp1.example.org')
>>> ssh_options("-o StrictHostKeyChecking=accept-new -i '/keys/a b'")
('-o', 'StrictHostKeyChecking=accept-new', '-i', '/keys/a b')
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from functools import lru_cache

# RFC 1123 labels; '_' too, as inventories and internal DNS names use it
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?")
USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?")  # POSIX-portable names, as useradd takes them
CONTAINER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")  # docker's container names

# ssh(1)'s options: those that take an argument, and those that do not (OpenSSH 9)
SSH_WITH_ARG = set("BbcDEeFIiJLlmOoPpQRSWw")
SSH_FLAGS = set("46AaCfGgKkMNnqsTtVvXxYy")


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


@lru_cache(maxsize=4096)  # a fleet repeats the same servers and monitors
def host_address(value: str) -> str:
    """``value`` if it is an IPv4/IPv6 address or a DNS name, else a ValueError that says why."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if HOSTNAME.fullmatch(value):
        return value
    bad = sorted({c for c in value if not (c.isascii() and (c.isalnum() or c in "._-"))})
    if bad:
        shown = ", ".join(repr(c) for c in bad[:5])
        raise ValueError(f"must be a host name or an IPv4/IPv6 address; {shown} cannot be in one (got {_shown(value)})")
    raise ValueError("must be a host name or an IPv4/IPv6 address: labels of letters, digits, '-' and '_', "
                     f"joined by '.', none starting or ending with '-', at most 253 characters (got {_shown(value)})")


def inventory_host_name(value: str) -> str:
    """An inventory host's name: it names a folder (``render --out``, ``host_vars/``) and is written into
    the header comment of every rendered file, so it is held to what a host name or an address can be."""
    return host_address(value)


def user_name(value: str) -> str:
    if "@" in value:
        raise ValueError("must be a user name; 'user@host' is not taken (put the host in ansible_host)")
    if ":" in value:
        raise ValueError("must be a user name; 'user:password' is not taken (use a key; the value is not shown)")
    if not USER.fullmatch(value):
        raise ValueError(f"must be a user name: letters, digits, '_', '.', '-' (got {_shown(value)})")
    return value


def port_number(value) -> int:
    if isinstance(value, bool):
        raise ValueError(f"must be a port number 1-65535 (got {value!r})")
    try:
        port = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise ValueError(f"must be a port number (got {_shown(str(value))})") from None
    if not 0 < port < 65536:
        raise ValueError(f"must be a port number 1-65535 (got {port})")
    return port


def container_name(value: str) -> str:
    if not CONTAINER.fullmatch(value):
        raise ValueError(f"must be a container name: letters, digits, '_', '.', '-' (got {_shown(value)})")
    return value


def interpreter(value: str) -> tuple[str, ...]:
    """ansible_python_interpreter as words (``/usr/bin/python3``, ``/usr/bin/env python3``): each is quoted
    on its own when the node's shell runs it, so a value names a program and its arguments, nothing more."""
    words = tuple(value.split())
    if not words or not value.isprintable() or words[0].startswith("-"):
        raise ValueError(f"must be a program path and its arguments, on one line (got {_shown(value)})")
    return words


def ssh_options(text: str) -> tuple[str, ...]:
    """ansible_ssh_common_args / ansible_ssh_extra_args split as Ansible splits them (shell-like quoting,
    no shell), each word an ssh option or an option's argument: a bare word would become the
    destination or the remote command."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"cannot be split into ssh arguments: {exc}") from None
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("-") or word in ("-", "--"):
            raise ValueError(f"{_shown(word)} is not an ssh option (each word must be an option like -o Key=value, "
                             "or its argument)")
        for j, letter in enumerate(word[1:], 1):
            if letter in SSH_WITH_ARG:
                if j == len(word) - 1:  # its argument is the next word
                    if i + 1 >= len(words):
                        raise ValueError(f"ssh option -{letter} needs an argument")
                    i += 1
                break  # the rest of the word is the argument
            if letter not in SSH_FLAGS:
                raise ValueError(f"{_shown(word)}: -{letter} is not an ssh option")
        i += 1
    return tuple(words)


def ssh_option_set(args: tuple[str, ...], name: str) -> bool:
    """Whether ``args`` set the ssh configuration keyword ``name`` (``-o Name=value``, ``-oName value``)."""
    name = name.lower()
    for i, word in enumerate(args):
        value = word[2:] if word.startswith("-o") and len(word) > 2 else args[i + 1] if word == "-o" and i + 1 < len(args) else ""
        if re.split(r"[\s=]", value.strip(), maxsplit=1)[0].lower() == name:
            return True
    return False
