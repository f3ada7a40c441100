"""A render hook that takes no argument (legal in pluggy), and a wrapper around render."""

from provision.hookspecs import hookimpl
from provision.stages.render import RenderedFile

SEEN = []


@hookimpl
def provision_render():
    return [RenderedFile("/etc/argless.conf", "made without ctx\n")]


class Wrapper:
    """A wrapper on the render hook, registered by the test as its own plugin."""

    @hookimpl(wrapper=True)
    def provision_render(self, ctx):
        files = yield
        SEEN.append(ctx.host)
        return files
