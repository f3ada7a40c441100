"""Bare nodes (tests/freshnode.py): a fresh Debian 12 root filesystem each, reached over SSH through a
network namespace of the tests', its apt reaching Debian's mirror only through the session's proxy."""

from __future__ import annotations

import shutil
import urllib.request

import pytest

from tests.freshnode import SUITE, AptProxy, FreshNode, reap_stale, rootfs
from tests.testhosts import HostNetwork

NEEDS = ("mmdebstrap", "socat", "/usr/sbin/apt-cacher-ng")


@pytest.fixture(scope="session")
def apt_proxy(tmp_path_factory):
    """The apt proxy on this machine's loopback; the tests that need the mirror are skipped, saying why,
    where this machine cannot reach it."""
    missing = [n for n in NEEDS if not shutil.which(n)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (setup.sh installs them)")
    reap_stale()  # bare nodes a killed earlier run left running
    proxy = AptProxy(tmp_path_factory.mktemp("apt-proxy"))
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{proxy.port}"}))
        opener.open(f"http://deb.debian.org/debian/dists/{SUITE}/Release", timeout=20).close()
    except OSError as exc:
        proxy.stop()
        pytest.skip(f"Debian's mirror cannot be reached from this machine: {exc}")
    try:
        rootfs()  # built once (about 20 s) and kept between runs
    except Exception as exc:
        proxy.stop()
        pytest.fail(f"mmdebstrap could not build the bare root filesystem: {exc}")
    yield proxy
    proxy.stop()


@pytest.fixture
def net():
    with HostNetwork("pvb", "10.217.0") as network:
        yield network


@pytest.fixture
def bare(tmp_path, apt_proxy, net):
    """A bare node joined to ``net`` as ``bare1``. libvirt's own mount namespace for QEMU cannot be made
    inside this chroot (QEMU then finds no PTY: 'Failed to create PTY'), so the node's qemu.conf, written
    before libvirt is installed and kept by dpkg, turns it off; nothing else of the node is prepared."""
    node = FreshNode(tmp_path / "bare1", apt_proxy)
    try:
        node.attach(net, "bare1")
        node.write("/etc/libvirt/qemu.conf", "namespaces = [ ]\n")
        yield node
    finally:
        node.stop()
