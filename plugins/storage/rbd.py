"""Ceph RBD storage: an rbd pool, the libvirt ceph secret, /etc/ceph/ceph.conf; krbd is not needed."""

from __future__ import annotations

from provision import installed, kernel
from provision.api import LibvirtObject, Remedy
from provision.checks import CheckSet, failed, passed, skipped, warned
from provision.hookspecs import hookimpl
from provision.stages.render import RenderedFile
from provision_plugins.storage.ceph import MON_PORT
from provision_plugins.storage.names import host_port
from provision_plugins.storage.pools import (
    entries,
    host_needs,
    images_on,
    libvirt_backend,
    pool_file,
    pool_objects,
    secret_file,
    software_with_qemu_driver,
)

checks = CheckSet()
RBD = kernel.Needs(config=("CONFIG_BLK_DEV_RBD",), modules=("rbd",))
SOFTWARE = installed.Software(
    "Ceph RBD software", pieces=(libvirt_backend("rbd"),),
    remedy="apt-get install libvirt-daemon-driver-storage-rbd qemu-block-extra (Debian/Ubuntu) or "
           "dnf install libvirt-daemon-driver-storage-rbd qemu-kvm-block-rbd (RHEL)")


@hookimpl
def provision_settings_schema():
    from provision_plugins.storage.rbd_schema import RbdPool

    return {"storage[]": RbdPool}


@hookimpl
def provision_probe():
    return {**kernel.probe(RBD), **installed.probe("storage.rbd", SOFTWARE)}


@checks.register("storage.rbd", "libvirt's rbd storage backend and QEMU's rbd block driver are installed, for rbd pools and images")
def rbd_software(facts, settings):
    needed, why_not = host_needs(settings, "rbd", also=images_on(settings, "rbd"))
    return software_with_qemu_driver(facts, "storage.rbd", SOFTWARE, "rbd", needed=needed, unneeded=why_not)


AUTH_TIMEOUT = 5  # seconds ceph's CLI waits for a monitor


def _mon_text(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@hookimpl
def provision_probe_settings(settings):
    """From the node: each monitor of each RBD pool opens a TCP connection; the key file is there; and,
    where ceph's CLI is installed, the pool's user authenticates with the key in it (``mon stat``: the
    least a client key with nova's caps may ask). The key is read by ceph on the node, never sent."""
    ops = {}
    for i, pool in enumerate(entries(settings, "rbd")):
        mons = monitors(pool)
        for j, (host, port) in enumerate(mons):
            ops[f"ceph.monitor.{i}.{j}"] = {"op": "connect", "host": host, "port": port, "timeout": 3}
        ops[f"ceph.key_file.{i}"] = {"op": "stat", "path": pool["key_file"]}
        ops[f"ceph.auth.{i}"] = {"op": "run", "timeout": AUTH_TIMEOUT + 10, "argv": [
            "ceph", "--conf", "/dev/null", "--connect-timeout", str(AUTH_TIMEOUT),
            "--mon-host", ",".join(_mon_text(h, p) for h, p in mons), "--id", pool["user"],
            "--keyfile", pool["key_file"], "mon", "stat"]}
    return ops


def _pool_reachable(facts, i: int, pool) -> tuple[str, str, dict[str, str], str]:
    """(status, message, evidence, remedy) of one RBD pool's cluster, as the node sees it."""
    mons = monitors(pool)
    evidence = {}
    silent = []
    for j, (host, port) in enumerate(mons):
        answer = facts.answer(f"ceph.monitor.{i}.{j}")
        text = _mon_text(host, port)
        evidence[f"monitor {text}"] = "answers" if answer.get("connected") else answer.get("reason") or answer.get("error", "")
        if not answer.get("connected"):
            silent.append(f"{text} ({evidence[f'monitor {text}']})")
    if len(silent) == len(mons):
        return ("fail", f"pool {pool['name']}: no monitor answers from the node: {'; '.join(silent)}", evidence,
                "check the monitors' addresses in the inventory, and the network and firewall between node and cluster")
    key = facts.answer(f"ceph.key_file.{i}")
    if "error" in key:
        evidence[pool["key_file"]] = key["error"]
        return ("fail", f"pool {pool['name']}: the key file {pool['key_file']} for client.{pool['user']} is not on the "
                        f"node ({key['error']})", evidence,
                f"put client.{pool['user']}'s key there (ceph auth get-key client.{pool['user']}), mode 0600")
    auth = facts.answer(f"ceph.auth.{i}")
    if "error" in auth:
        evidence["ceph"] = auth["error"]
        return ("warn", f"pool {pool['name']}: monitors answer, but ceph's CLI is not on the node, so the key was not "
                        "tried", evidence, "apt-get install ceph-common (dnf install ceph-common on RHEL)")
    said = [ln.strip() for ln in (auth.get("stderr") or "").splitlines() if ln.strip()]
    if auth.get("rc") != 0:
        evidence["ceph mon stat"] = said[-1] if said else f"exit {auth.get('rc')}"
        return ("fail", f"pool {pool['name']}: client.{pool['user']} does not authenticate with the key in "
                        f"{pool['key_file']}: {evidence['ceph mon stat']}", evidence,
                f"compare the key file with ceph auth get-key client.{pool['user']}, and the user's caps")
    if silent:
        return ("warn", f"pool {pool['name']}: client.{pool['user']} authenticates, but not every monitor answers: "
                        f"{'; '.join(silent)}", evidence, "check the monitors that do not answer")
    evidence["ceph mon stat"] = (auth.get("stdout") or "").strip().splitlines()[0][:200] if auth.get("stdout") else "ok"
    return ("pass", f"pool {pool['name']}: {len(mons)} monitor(s) answer and client.{pool['user']} authenticates",
            evidence, "")


@checks.register("ceph.reachable", "from the node, each RBD pool's monitors answer and its user authenticates "
                                   "with the key in key_file")
def ceph_reachable(facts, settings):
    pools = entries(settings, "rbd")
    if not pools:
        return skipped("no rbd storage in the inventory")
    results = [_pool_reachable(facts, i, pool) for i, pool in enumerate(pools)]
    evidence = {k: v for r in results for k, v in r[2].items()}
    worst = next((r for status in ("fail", "warn") for r in results if r[0] == status), results[0])
    message = "; ".join(r[1] for r in results)
    make = {"fail": failed, "warn": warned}.get(worst[0])
    return make(message, evidence, worst[3]) if make else passed(message, evidence)


@checks.register("kernel.rbd", "the kernel has the Ceph rbd driver; QEMU's librbd does not need it")
def kernel_rbd(facts, settings):
    feature = kernel.kernel_feature(facts, RBD)
    return kernel.kernel_check(feature, what="Ceph rbd", needed=False,
                               note="QEMU's librbd does not need it; only krbd mapping does",
                               remedy="modprobe rbd, only if volumes are mapped with krbd")


def monitors(pool) -> list[tuple[str, int]]:
    return [host_port(m, MON_PORT) for m in pool["monitors"]]


@hookimpl
def provision_render(ctx):
    files = []
    pools = [s for s in ctx.settings.get("storage") or [] if s["type"] == "rbd"]
    for pool in pools:
        files.append(RenderedFile(pool_file(pool["name"]), ctx.render("libvirt/pool-rbd.xml.j2", pool=pool, monitors=monitors(pool))))
        files.append(RenderedFile(secret_file(pool["name"]), ctx.render("libvirt/secret-ceph.xml.j2", pool=pool)))
    by_conf: dict[str, list] = {}
    for pool in pools:
        by_conf.setdefault(pool["ceph_conf"], []).append(pool)
    for conf, members in by_conf.items():
        mons = sorted({m for p in members for m in monitors(p)})
        files.append(RenderedFile(conf, ctx.render("ceph/ceph.conf.j2", pools=members, monitors=mons)))
    return files


@hookimpl
def provision_apply_objects(ctx, files):
    """The pools, and the ceph secrets set from each key file (base64, as Ceph writes it) on the node."""
    return [LibvirtObject("secret", secret_file(p["name"]), value_file=p["key_file"], value_format="base64")
            for p in entries(ctx.settings, "rbd")] + pool_objects(ctx.settings, "rbd")


@checks.remedy("storage.rbd")
def install_rbd(facts, settings, result) -> Remedy:
    from provision_plugins.libvirt import SERVICES

    return Remedy(packages={"debian": ("libvirt-daemon-driver-storage-rbd", "qemu-block-extra", "ceph-common"),
                            "redhat": ("libvirt-daemon-driver-storage-rbd", "qemu-kvm-block-rbd", "ceph-common")},
                  services=SERVICES)


provision_check_catalog, provision_checks = checks.hooks()
provision_remedies = checks.remedies_hook()
