"""iSCSI storage: an iscsi (kernel initiator) or iscsi-direct (libiscsi) pool, with CHAP as a libvirt secret."""

from __future__ import annotations

from provision import kernel
from provision.checks import CheckSet
from provision.hookspecs import hookimpl
from provision.render import RenderedFile
from provision_plugins.storage.names import host_port
from provision_plugins.storage.pools import pool_file, secret_file, uses

checks = CheckSet()
ISCSI_TCP = kernel.Needs(config=("CONFIG_ISCSI_TCP",), modules=("iscsi_tcp",))
@hookimpl
def provision_settings_schema():
    from provision_plugins.storage.iscsi_schema import IscsiPool

    return {"storage[]": IscsiPool}


@hookimpl
def provision_probe():
    return kernel.probe(ISCSI_TCP)


@checks.register("kernel.iscsi", "the kernel has the iSCSI initiator (iscsi_tcp); iscsi-direct pools do not need it")
def kernel_iscsi(facts, settings):
    feature = kernel.kernel_feature(facts, ISCSI_TCP)
    needed = any(s["type"] == "iscsi" and not s.get("direct") for s in settings.get("storage") or []) \
        if uses(settings, "iscsi") else False
    return kernel.kernel_check(
        feature, what="iSCSI initiator", needed=needed,
        note="libvirt's iscsi-direct pools and QEMU's libiscsi do not need it",
        remedy="modprobe iscsi_tcp (apt-get install open-iscsi), or use an iscsi-direct pool",
    )


@hookimpl
def provision_render(ctx):
    files = []
    for pool in (s for s in ctx.settings.get("storage") or [] if s["type"] == "iscsi"):
        host, port = host_port(pool["portal"], 3260)
        usage = f"provision-{pool['name']}"
        files.append(RenderedFile(pool_file(pool["name"]), ctx.render(
            "libvirt/pool-iscsi.xml.j2", pool=pool, portal_host=host, portal_port=port, usage=usage)))
        if pool["chap"]:
            files.append(RenderedFile(secret_file(pool["name"]), ctx.render("libvirt/secret-iscsi.xml.j2", usage=usage),
                                      apply={"secret_usage": usage, "value_file": pool["chap"]["password_file"]}))
    return files


provision_check_catalog, provision_checks = checks.hooks()
