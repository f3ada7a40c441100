"""A plugin that names libvirt objects wrongly: a file nobody renders, and a network that is a pool."""

from provision.api import LibvirtObject
from provision.hookspecs import hookimpl


@hookimpl
def provision_apply_objects(ctx, files):
    return [LibvirtObject("pool", "/etc/provision/libvirt/pool-nobody.xml"),
            LibvirtObject("network", "/etc/provision/libvirt/pool-vms.xml")]
