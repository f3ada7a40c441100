"""Where plugins written before the layout by concern import host specs and nodes; the code is in
:mod:`provision.remote.hosts`."""

from provision.remote.hosts import HostSpec, Node, parse_host_spec

__all__ = ["HostSpec", "Node", "parse_host_spec"]
