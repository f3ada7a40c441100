"""Where plugins written before the layout by concern import what rendering gives them; the code is in
:mod:`provision.stages.render` (and the types in :mod:`provision.api`)."""

from provision.api import RenderContext, RenderedFile
from provision.stages.defaults import with_defaults

__all__ = ["RenderContext", "RenderedFile", "with_defaults"]
