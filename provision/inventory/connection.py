"""Ansible's connection variables mapped to a testinfra host spec."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from provision.hosts import HostSpec, parse_host_spec
from provision.inventory.model import InventoryHost

CONNECTIONS = ("local", "ssh", "paramiko", "docker")
IMPLICIT_LOCAL = ("localhost", "127.0.0.1", "::1")


class ConnectionError_(ValueError):
    """A connection variable is wrong: (variable name, message)."""

    def __init__(self, var: str, message: str) -> None:
        super().__init__(f"{var}: {message}")
        self.var = var


@cache
def control_path() -> str:
    """Where ssh keeps its master connections: a private folder, names short enough for a socket."""
    folder = Path(f"/tmp/provision-ssh-{os.getuid()}")
    folder.mkdir(mode=0o700, exist_ok=True)
    return str(folder / "%%C")  # testinfra %-formats the ssh command line: %%C reaches ssh as %C


def host_spec_for(host: InventoryHost) -> HostSpec:
    """The testinfra host spec for an inventory host; raises :class:`ConnectionError_`."""
    v = host.vars
    address = str(v.get("ansible_host", host.name))
    default = "local" if host.name in IMPLICIT_LOCAL and "ansible_host" not in v else "ssh"
    connection = v.get("ansible_connection", default)
    if connection not in CONNECTIONS:
        raise ConnectionError_("ansible_connection", f"must be one of {', '.join(CONNECTIONS)} (got {connection!r})")
    if connection == "local":
        return parse_host_spec("local://", name=host.name)
    if connection == "docker":
        return parse_host_spec(f"docker://{address}", name=host.name, python=str(v.get("ansible_python_interpreter") or ""))
    user = v.get("ansible_user")
    port = v.get("ansible_port")
    if port is not None:
        try:
            port = int(port)
        except (TypeError, ValueError):
            raise ConnectionError_("ansible_port", f"must be a port number (got {port!r})") from None
        if not 0 < port < 65536:
            raise ConnectionError_("ansible_port", f"must be a port number 1-65535 (got {port})")
    netloc = f"[{address}]" if ":" in address else address
    spec = f"{connection}://{user + '@' if user else ''}{netloc}{':' + str(port) if port else ''}"
    options = {}
    if key := v.get("ansible_ssh_private_key_file"):
        if "\n" in str(key) or "PRIVATE KEY" in str(key):  # the key itself, pasted: never echo it
            raise ConnectionError_("ansible_ssh_private_key_file", "must be the path of a key file, not the key (the value is not shown)")
        key_path = Path(os.path.expanduser(str(key)))
        if not key_path.is_file():
            raise ConnectionError_("ansible_ssh_private_key_file", f"no such key file {str(key)!r}")
        options["ssh_identity_file"] = str(key_path)
    extra = " ".join(str(v[k]) for k in ("ansible_ssh_common_args", "ansible_ssh_extra_args") if v.get(k))
    if extra and connection == "ssh":
        options["ssh_extra_args"] = extra
    if connection == "ssh" and "controlpath" not in extra.lower():
        # one master connection per node, kept 60 s: the next command to the node skips the handshake
        options["controlpath"] = control_path()
    return parse_host_spec(spec, name=host.name, python=str(v.get("ansible_python_interpreter") or ""), **options)
