"""Describes nwfilter again: a clash, refused naming both plugins."""

from provision.hookspecs import hookimpl
from tests.fixture_plugins.nwfilter import NWFILTER


@hookimpl
def provision_libvirt_kinds():
    return [NWFILTER]
