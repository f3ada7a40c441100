"""IP addresses, networks and interfaces, parsed once per distinct value.

A fleet repeats the same few subnets, gateways and DHCP ranges on every host (they come from
group_vars), and ``ipaddress`` parses each in Python at several microseconds a time: the schema
types and the helpers here remember what they parsed. The objects are immutable, so sharing them
is safe, and a value that does not parse is not remembered (its error is raised every time).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Annotated, Any

from pydantic import ValidationError, WrapValidator

ip_address = lru_cache(maxsize=4096)(ipaddress.ip_address)
ip_network = lru_cache(maxsize=4096)(ipaddress.ip_network)
ip_interface = lru_cache(maxsize=4096)(ipaddress.ip_interface)


def _remembered(maxsize: int = 4096, message: str = "") -> WrapValidator:
    """A pydantic validator that runs the type's own validation once per string; ``message``, when given,
    replaces its error (a union's, which would name each member)."""
    seen: dict[str, Any] = {}

    def parse(value: Any, handler):
        if not message:
            return handler(value)
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(message) from None

    def validate(value: Any, handler):
        if type(value) is not str:
            return parse(value, handler)
        try:
            return seen[value]
        except KeyError:
            parsed = parse(value, handler)
            if len(seen) >= maxsize:
                seen.clear()
            seen[value] = parsed
            return parsed

    return WrapValidator(validate)


IPv4Address = Annotated[ipaddress.IPv4Address, _remembered()]
IPv4Network = Annotated[ipaddress.IPv4Network, _remembered()]
IPInterface = Annotated[ipaddress.IPv4Interface | ipaddress.IPv6Interface,
                        _remembered(message="must be an IPv4 or IPv6 address with its prefix length, like 192.0.2.10/24")]
