"""A node for apply tests: this machine seen from a private network and mount namespace, with its own
libvirtd, in which /etc, /var/lib and /var/cache are overlays whose changes land in a folder of the
test and /run is private. Commands enter that namespace (nsenter), so what one apply wrote
the next one finds; this machine's own files, network and libvirt objects are never touched. The
namespace lives as long as its libvirtd; ``stop()`` ends every process in it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import provision_bin

OVERLAID = {"/etc": "etc", "/var/lib": "var-lib", "/var/cache": "var-cache"}


class OverlayNode:
    __test__ = False

    def __init__(self, base: Path) -> None:
        self.base = base
        for name in OVERLAID.values():
            (base / name / "upper").mkdir(parents=True)
            (base / name / "work").mkdir()
        overlays = " && ".join(
            f"mount -t overlay overlay -o lowerdir={target},upperdir={base / name / 'upper'},"
            f"workdir={base / name / 'work'} {target}" for target, name in OVERLAID.items())
        script = (f"{overlays} && mount -t tmpfs tmpfs /run && mkdir /run/libvirt && ip link set lo up && "
                  f"virtlogd -d -p {base / 'virtlogd.pid'} && libvirtd -d -p {base / 'libvirtd.pid'}")
        subprocess.run(["unshare", "--mount", "--net", "--propagation", "private", "sh", "-c", script], check=True)
        for _ in range(200):
            if (base / "libvirtd.pid").exists() and self.run("virsh", "-q", "version").returncode == 0:
                break
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError("the node's libvirtd did not answer within 20 s")
        self.net = os.stat(f"/proc/{self.pid}/ns/net").st_ino

    @property
    def pid(self) -> int:
        return int((self.base / "libvirtd.pid").read_text())

    def run(self, *argv: str, before: str = "", timeout: float = 180) -> subprocess.CompletedProcess:
        """``argv`` inside the node; ``before`` is shell run there first (the test's own, never an input)."""
        command = ["sh", "-c", (before + "; " if before else "") + 'exec "$@"', "sh", *argv]
        return subprocess.run(["nsenter", "-t", str(self.pid), "-m", "-n", *command], capture_output=True,
                              text=True, timeout=timeout)

    def provision(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run(provision_bin(), *args, **kwargs)

    def virsh(self, *args: str) -> subprocess.CompletedProcess:
        return self.run("virsh", "-q", "-c", "qemu:///system", *args)

    def sh(self, script: str, *args: str) -> None:
        """A change made on the node, as someone there would make it (an overlay's upper folder must not be
        changed from outside while it is mounted); ``args`` are $1... of the test's own ``script``."""
        result = self.run("sh", "-c", script, "sh", *args)
        assert result.returncode == 0, result.stderr

    def write(self, target: str, text: str) -> None:
        self.sh('mkdir -p "$(dirname "$2")" && printf %s "$1" > "$2"', text, target)

    def path(self, target: str) -> Path:
        """Where a file the node wrote under an overlaid folder is kept."""
        for prefix, name in OVERLAID.items():
            if target.startswith(prefix + "/"):
                return self.base / name / "upper" / target[len(prefix) + 1:]
        raise ValueError(f"{target} is not under an overlaid folder")

    def processes(self) -> list[int]:
        """Every process in the node's network namespace (libvirtd, virtlogd, dnsmasq, ...)."""
        net = getattr(self, "net", None)
        if net is None:
            try:
                net = os.stat(f"/proc/{self.pid}/ns/net").st_ino
            except (OSError, ValueError):
                return []
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.stat(f"/proc/{pid}/ns/net").st_ino == net:
                    found.append(int(pid))
            except OSError:
                continue
        return found

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self.processes():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            for _ in range(50):
                if not self.processes():
                    return
                time.sleep(0.1)
