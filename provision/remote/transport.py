"""Connections to nodes: a :class:`~provision.remote.hosts.HostSpec` becomes a testinfra host whose backend runs
from argument vectors (ssh, docker) or paramiko; nothing is sent until a command runs. Kept apart from
:mod:`provision.remote.hosts` (specs only), which the backends themselves import."""

from __future__ import annotations

from provision.errors import Unreachable
from provision.remote.hosts import HostSpec


def connect(host: HostSpec, *, timeout: float = 10):
    """The testinfra host for ``host``; nothing is sent until a command runs."""
    import testinfra
    from testinfra.host import Host

    if host.problem:
        raise Unreachable(host.problem)

    if host.scheme == "ssh":
        from provision.remote.ssh import ArgvSshBackend

        backend = ArgvSshBackend(host, timeout=max(1, int(timeout)))
    elif host.scheme == "paramiko":
        from provision.remote.paramiko_backend import InputParamikoBackend

        # the parts are checked (no '@', ':' or '?' where they do not belong): this string cannot mean more
        backend = InputParamikoBackend(host.netloc, ssh_identity_file=host.identity_file or None, timeout=max(1, int(timeout)))
    elif host.scheme == "docker":
        from provision.remote.docker import ArgvDockerBackend

        backend = ArgvDockerBackend(host)
    elif host.scheme == "local":
        return testinfra.get_host("local://")
    else:  # ansible:// is resolved through Ansible's inventory when the nodes are selected
        raise ValueError(f"no connection for {host.scheme}:// (a {host.scheme}:// spec is resolved before any is made)")
    result = Host(backend)
    backend.set_host(result)
    return result
