"""Ansible's connection variables turned into a :class:`HostSpec`, every value checked for what it is."""

from __future__ import annotations

import os
from pathlib import Path

from provision.addresses import container_name, host_address, interpreter, port_number, ssh_options, user_name
from provision.inventory.model import InventoryHost
from provision.remote.hosts import HostSpec

CONNECTIONS = ("local", "ssh", "paramiko", "docker")
# Ansible's names for them: short, legacy and fully qualified ('smart' has meant ssh since 2.x)
ALIASES = {"smart": "ssh", "ansible.builtin.ssh": "ssh", "ansible.builtin.local": "local",
           "paramiko_ssh": "paramiko", "ansible.builtin.paramiko_ssh": "paramiko", "ansible.legacy.ssh": "ssh",
           "ansible.legacy.local": "local", "community.docker.docker": "docker"}


class ConnectionError_(ValueError):
    """A connection variable is wrong: (variable name, message)."""

    def __init__(self, var: str, message: str) -> None:
        super().__init__(f"{var}: {message}")
        self.var = var


def _checked(var: str, check, value):
    try:
        return check(value)
    except ValueError as exc:
        raise ConnectionError_(var, str(exc)) from None


def default_connection() -> str:
    from ansible import constants as C

    return str(C.DEFAULT_TRANSPORT)


def host_spec_for(host: InventoryHost) -> HostSpec:
    """The host spec for an inventory host; raises :class:`ConnectionError_`."""
    from provision.remote.ssh import control_path

    v = host.vars
    address = str(v.get("ansible_host", host.name))
    # only Ansible's implicit localhost is local by default; a 'localhost' in the inventory is reached over ssh
    given = v.get("ansible_connection") or ("local" if host.implicit else default_connection())
    connection = ALIASES.get(str(given), str(given))
    if connection not in CONNECTIONS:
        raise ConnectionError_("ansible_connection", f"must be one of {', '.join(CONNECTIONS)} (or Ansible's "
                               f"names for them: smart, ansible.builtin.ssh, ...) (got {given!r})")
    python = ()
    if (value := v.get("ansible_python_interpreter")) is not None:
        python = _checked("ansible_python_interpreter", interpreter, str(value))
    if connection == "local":
        return HostSpec(name=host.name, scheme="local", python=python)
    var = host.label("ansible_host") if "ansible_host" in v else "host name"
    if connection == "docker":
        return HostSpec(name=host.name, scheme="docker", address=_checked(var, container_name, address), python=python)
    address = _checked(var, host_address, address)
    user = _checked(host.label("ansible_user"), user_name, str(v["ansible_user"])) if v.get("ansible_user") is not None else ""
    port = _checked(host.label("ansible_port"), port_number, v["ansible_port"]) if v.get("ansible_port") is not None else None
    identity, problem = "", ""
    if key := v.get("ansible_ssh_private_key_file"):
        key = str(key)
        if any(not c.isprintable() for c in key) or "PRIVATE KEY" in key:  # the key itself, pasted
            raise ConnectionError_(host.label("ansible_ssh_private_key_file"), "must be the path of a key file, not the key "
                                   "(the value is not shown)")
        key_path = Path(os.path.expanduser(key))
        identity = str(key_path)
        if not key_path.is_file() and not looks_like_path(key):  # never quoted back: a key pasted on one line
            raise ConnectionError_(host.label("ansible_ssh_private_key_file"), "names no key file on this machine (the value is "
                                   "not shown: it looks like a pasted key)")
        if not key_path.is_file():  # as in Ansible: this host's connection fails, the others go on
            problem = f"{host.label('ansible_ssh_private_key_file')}: no key file {key} on this machine"
    args: tuple[str, ...] = ()
    for name in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
        if v.get(name):
            args += _checked(name, ssh_options, str(v[name]))
    return HostSpec(name=host.name, scheme=connection, address=address, user=user, port=port, identity_file=identity,
                    ssh_args=args if connection == "ssh" else (), python=python,
                    control_path=control_path() if connection == "ssh" else "", problem=problem)


def looks_like_path(value: str) -> bool:
    """Whether a key file's name may be shown: short, and without the long base64 runs of a key pasted
    on one line (``AAAAB3NzaC1yc2E...``)."""
    import re

    return len(value) <= 200 and not re.search(r"[A-Za-z0-9+=]{40,}", value)
