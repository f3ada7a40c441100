"""A libvirt object kind from outside the core: nwfilter, described as data. Proves the seam: no edit of
provision/ lets apply define, leave and remove an nwfilter."""

from provision.api import LIBVIRT_DIR, LibvirtKind, LibvirtObject, RenderedFile
from provision.hookspecs import hookimpl

NWFILTER = LibvirtKind("nwfilter", {"dump": ["nwfilter-dumpxml"], "define": "nwfilter-define",
                                    "undefine": "nwfilter-undefine", "list": "nwfilter-list"},
                       startable=False, element="filter")
FILE = f"{LIBVIRT_DIR}/nwfilter-provision-test-clean.xml"


@hookimpl
def provision_libvirt_kinds():
    return [NWFILTER]


@hookimpl
def provision_render(ctx):
    return [RenderedFile(FILE, "<filter name='provision-test-clean' chain='root'>\n"
                               "  <rule action='accept' direction='out' priority='500'><all/></rule>\n</filter>\n")]


@hookimpl
def provision_apply_objects(ctx, files):
    return [LibvirtObject("nwfilter", FILE)]
