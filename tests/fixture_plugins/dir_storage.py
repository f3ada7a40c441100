"""A storage type from outside the built-ins: `dir` pools. Proves the seam: schema, check, template
and renderer come from this one module, and nothing in provision/ knows of it."""

from pathlib import Path
from typing import Literal

from provision.api import LibvirtObject, RenderedFile
from provision.checks import CheckSet, failed, passed
from provision.hookspecs import hookimpl
from provision.settings import StrictModel

checks = CheckSet()


class DirPool(StrictModel):
    type: Literal["dir"]
    name: str
    path: str


@hookimpl
def provision_settings_schema():
    return {"storage[]": DirPool}


@hookimpl
def provision_template_paths():
    return [str(Path(__file__).parent / "templates")]


@hookimpl
def provision_probe():
    return {"dir.var_lib": {"op": "stat", "path": "/var/lib"}}


@checks.register("storage.dir", "the parent of dir pools exists")
def parent_exists(facts, settings):
    if facts.error("dir.var_lib"):
        return failed("/var/lib is missing", facts.evidence("dir.var_lib"), "create it")
    return passed("/var/lib exists", facts.evidence("dir.var_lib"))


@hookimpl
def provision_render(ctx):
    return [RenderedFile(f"/etc/provision/libvirt/pool-{p['name']}.xml", ctx.render("dir/pool-dir.xml.j2", pool=p))
            for p in ctx.settings["storage"] if p["type"] == "dir"]


@hookimpl
def provision_apply_objects(ctx, files):
    return [LibvirtObject("pool", f"/etc/provision/libvirt/pool-{p['name']}.xml")
            for p in ctx.settings["storage"] if p["type"] == "dir"]


provision_check_catalog, provision_checks = checks.hooks()
