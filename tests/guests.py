"""Helpers for tests that drive the real libvirtd: a throw-away pool, and independent checks with virsh."""

from __future__ import annotations

import subprocess
import time
import uuid

PREFIX = "pvtest-"


def virsh(*args: str, uri: str = "qemu:///system", check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(["virsh", "-q", "-c", uri, *args], capture_output=True, text=True, check=check)


def domstate(name: str, uri: str = "qemu:///system") -> str:
    proc = virsh("domstate", name, uri=uri)
    return proc.stdout.strip() if proc.returncode == 0 else "absent"


def domains(uri: str = "qemu:///system") -> list[str]:
    return [n for n in virsh("list", "--all", "--name", uri=uri).stdout.split() if n.startswith(PREFIX)]


def remove_test_guests(uri: str = "qemu:///system") -> None:
    """Destroy and undefine every guest a test made (names start with pvtest-), with its volumes."""
    for name in domains(uri):
        virsh("destroy", name, uri=uri)
        virsh("undefine", name, "--remove-all-storage", "--nvram", uri=uri)


def wait_for_console(name: str, marker: str, timeout: float = 30) -> str:
    path = f"/var/log/libvirt/qemu/{name}-console.log"
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            text = open(path).read()
        except OSError:
            text = ""
        if marker in text:
            return text
        time.sleep(0.1)
    return text


class TestPool:
    """A dir pool under /var/lib/libvirt/images, defined, built and started; removed with its volumes."""

    __test__ = False

    def __init__(self) -> None:
        self.name = f"{PREFIX}pool-{uuid.uuid4().hex[:6]}"
        self.path = f"/var/lib/libvirt/images/{self.name}"
        virsh("pool-define-as", self.name, "dir", "--target", self.path, check=True)
        virsh("pool-build", self.name, check=True)
        virsh("pool-start", self.name, check=True)

    def volumes(self) -> list[str]:
        virsh("pool-refresh", self.name)
        return virsh("vol-list", self.name).stdout.split()[0::2]

    def remove(self) -> None:
        for vol in self.volumes():
            virsh("vol-delete", vol, "--pool", self.name)
        virsh("pool-destroy", self.name)
        virsh("pool-delete", self.name)
        virsh("pool-undefine", self.name)


class SecondLibvirtd:
    """Another real libvirtd (and virtlogd) on this machine, for migrations: it runs in a private mount
    namespace with its own /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt
    (folders under a temporary directory) and its own host UUID; reached at ``self.uri``."""

    __test__ = False

    def __init__(self) -> None:
        import tempfile
        from pathlib import Path

        self.dir = Path(tempfile.mkdtemp(prefix="pvtest-libvirtd-"))
        for sub in ("run", "lib", "cache", "log/qemu"):
            (self.dir / sub).mkdir(parents=True)
        (self.dir / "libvirtd.conf").write_text(f'host_uuid = "{uuid.uuid4()}"\n')
        mounts = " && ".join(f"mount --bind {self.dir / src} {dst}" for src, dst in (
            ("run", "/run/libvirt"), ("lib", "/var/lib/libvirt"), ("cache", "/var/cache/libvirt"), ("log", "/var/log/libvirt")))
        script = (f"{mounts} && virtlogd -d -p /run/libvirt/virtlogd.pid && "
                  f"libvirtd -d -p /run/libvirt/libvirtd.pid -f {self.dir / 'libvirtd.conf'}")
        subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], check=True)
        self.uri = f"qemu+unix:///system?socket={self.dir / 'run' / 'libvirt-sock'}"
        for _ in range(300):
            if virsh("version", uri=self.uri).returncode == 0:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"the second libvirtd did not answer on {self.uri} within 30 s")

    def stop(self) -> None:
        import os
        import shutil
        import signal

        remove_test_guests(self.uri)
        pids = []
        for pidfile in ("libvirtd.pid", "virtlogd.pid"):
            try:
                pids.append(int((self.dir / "run" / pidfile).read_text()))
                os.kill(pids[-1], signal.SIGTERM)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 30  # the daemons are gone before their folders are removed
        while any(os.path.exists(f"/proc/{pid}") for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(self.dir, ignore_errors=True)
