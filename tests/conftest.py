"""Shared fixtures: the plugin hooks, a CLI runner, and the real daemons the suite needs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="session", autouse=True)
def provision_cache(tmp_path_factory):
    """The suite's own cache of settings defaults (tests load plugins from temporary folders: each set
    would leave a file in the user's cache); every provision the tests start inherits it."""
    from provision.stages.defaults import CACHE_ENV

    saved = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("provision-cache"))
    yield Path(os.environ[CACHE_ENV])
    if saved is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = saved


@pytest.fixture(scope="session")
def hooks():
    from provision.plugins import Hooks, make_plugin_manager

    return Hooks(make_plugin_manager(autoload=False))


@pytest.fixture
def cli():
    """Invoke the Typer app in-process: ``cli("preflight", "-o", "json")``."""
    from typer.testing import CliRunner

    from provision.cli import app

    runner = CliRunner()

    def invoke(*args: str, env: dict | None = None):
        return runner.invoke(app, list(args), env=env, catch_exceptions=False)

    return invoke


def provision_bin() -> str:
    """The installed console script, as a user runs it."""
    path = VENV_BIN / "provision"
    return str(path) if path.exists() else shutil.which("provision")


@pytest.fixture(scope="session")
def kvm_permissions():
    """/dev/kvm as udev leaves it on a normal host (root:kvm 0660), as setup.sh does."""
    if os.path.exists("/dev/kvm"):
        subprocess.run(["chgrp", "kvm", "/dev/kvm"], check=True)
        os.chmod("/dev/kvm", 0o660)


@pytest.fixture(scope="session")
def libvirtd(kvm_permissions):
    """A running libvirtd (and virtlogd) from Debian, started without systemd if needed."""
    for daemon in ("virtlogd", "libvirtd"):
        if subprocess.run(["pgrep", "-x", daemon], capture_output=True).returncode != 0:
            subprocess.run([daemon, "-d"], check=True)
    for _ in range(100):
        if subprocess.run(["virsh", "-c", "qemu:///system", "version"], capture_output=True).returncode == 0:
            return "qemu:///system"
        time.sleep(0.2)
    pytest.fail("libvirtd did not answer on qemu:///system within 20 s")


# markers follow the fixtures a test uses (the whole closure: ``canary`` brings ``libvirtd``), so
# ``-m "not libvirt and not netns"`` starts no daemon and makes no namespace node
# and ``-m "not root"`` is what an unprivileged user can run (tests/test_unprivileged.py runs it as nobody)
FIXTURE_MARKERS = {"kvm_permissions": ("root",), "loop_device": ("root",), "libvirtd": ("libvirt", "root"), "node": ("libvirt", "netns", "root"),
                   "managed": ("libvirt", "netns", "root")}
IMPLIED = {"libvirt": "root", "netns": "root"}  # a daemon of the system's, or a namespace: root's to make


ALL_ITEMS = pytest.StashKey[list]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    config.stash[ALL_ITEMS] = list(items)  # every collected test, before -k and -m deselect (test_markers.py)
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        wanted = [mark for fixture, marks in FIXTURE_MARKERS.items() if fixture in used for mark in marks]
        wanted += [IMPLIED[m.name] for m in item.iter_markers() if m.name in IMPLIED]
        for mark in dict.fromkeys(wanted):
            if item.get_closest_marker(mark) is None:
                item.add_marker(mark)


def pytest_runtest_setup(item):
    if item.get_closest_marker("root") and os.geteuid() != 0:
        pytest.skip("needs root (deselect with -m 'not root')")
