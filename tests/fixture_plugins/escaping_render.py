"""A plugin that renders a file whose target climbs out of the host's tree: the render must refuse it."""

from provision.hookspecs import hookimpl
from provision.stages.render import RenderedFile


@hookimpl
def provision_render(ctx):
    return [RenderedFile(f"/etc/../../{ctx.host}-escaped.conf", "x = 1\n")]
