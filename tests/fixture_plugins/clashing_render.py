"""A plugin that renders a file a built-in plugin already renders: the render must refuse both."""

from provision.hookspecs import hookimpl
from provision.stages.render import RenderedFile


@hookimpl
def provision_render(ctx):
    return [RenderedFile("/etc/nova/nova.conf.d/50-provision-libvirt.conf", "[libvirt]\nvirt_type = lxc\n")]
