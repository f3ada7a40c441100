"""iSCSI storage: an iscsi (kernel initiator) or iscsi-direct (libiscsi) pool, with CHAP as a libvirt secret."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, field_validator

from provision import kernel
from provision.checks import CheckSet
from provision.hookspecs import hookimpl
from provision.render import RenderedFile
from provision.settings import StrictModel
from provision_plugins.storage.names import host_port
from provision_plugins.storage.pools import AbsPath, PoolName, pool_file, secret_file, uses

checks = CheckSet()
ISCSI_TCP = kernel.Needs(config=("CONFIG_ISCSI_TCP",), modules=("iscsi_tcp",))
# the pattern libvirt's storage pool schema gives initiator IQNs (RFC 3720 names)
IQN = re.compile(r"iqn\.[0-9]{4}-(0[1-9]|1[0-2])\.[a-zA-Z0-9.\-]+(:.+)?")


def _iqn(value: str) -> str:
    if not IQN.fullmatch(value):
        raise ValueError("must be an IQN like iqn.2026-01.com.example:name (iqn.YYYY-MM.reversed.domain[:id])")
    return value


Iqn = Annotated[str, AfterValidator(_iqn)]


class Chap(StrictModel):
    username: str
    password_file: AbsPath  # read on the node when applied; never rendered


class IscsiPool(StrictModel):
    type: Literal["iscsi"]
    name: PoolName
    portal: str
    target: Iqn
    initiator: Iqn
    chap: Chap | None = None
    direct: bool = False  # an iscsi-direct pool: QEMU's libiscsi, no kernel initiator

    @field_validator("portal")
    @classmethod
    def _portal(cls, value):
        host_port(value, 3260)
        return value


@hookimpl
def provision_settings_schema():
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
