"""A node for apply tests: this machine seen from a private network and mount namespace, with its own
libvirtd, in which /etc, /var/lib and /var/cache are overlays whose changes land in a folder of the
test and /run is private. Commands enter that namespace (nsenter), so what one apply wrote
the next one finds; this machine's own files, network and libvirt objects are never touched. The
namespace lives as long as its libvirtd; ``stop()`` ends every process in it.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import provision_bin

OVERLAID = {"/etc": "etc", "/var/lib": "var-lib", "/var/cache": "var-cache"}
# PID 1 of the node: reaps what dies there (a daemon killed by a test must not linger as a zombie)
REAPER = "import os, time\nwhile True:\n    try:\n        os.wait()\n    except ChildProcessError:\n        time.sleep(1)\n"


def cmdline(pid: int) -> bytes:
    """A process's command line, or b"" when it is gone meanwhile."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read()
    except OSError:
        return b""


class OverlayNode:
    __test__ = False

    def __init__(self, base: Path, *, libvirt: bool = True) -> None:
        """``libvirt=False``: a node without libvirtd (files only; cheaper, for fleets of them)."""
        self.base = base
        for name in OVERLAID.values():
            (base / name / "upper").mkdir(parents=True)
            (base / name / "work").mkdir()
        # /usr is this machine's: a remedy's package install must fail there, never reach it
        stub = base / "no-package-manager"
        stub.write_text("#!/bin/sh\necho \"E: $0 is off in this test node: its /usr is this machine's\" >&2\nexit 100\n")
        stub.chmod(0o755)
        guard = " && ".join([f"mount --bind {stub} {p}" for p in ("/usr/bin/apt-get", "/usr/bin/dpkg", "/usr/bin/dnf")
                               if os.path.exists(p)] or ["true"])
        overlays = " && ".join(
            f"mount -t overlay overlay -o lowerdir={target},upperdir={base / name / 'upper'},"
            f"workdir={base / name / 'work'} {target}" for target, name in OVERLAID.items())
        # the namespace is held by a sleeping anchor process, so it outlives a libvirtd a test stops
        script = (f"{overlays} && {guard} && mount -t tmpfs tmpfs /run && mkdir /run/libvirt /run/lock && ip link set lo up && "
                  + (f"virtlogd -d -p {base / 'virtlogd.pid'} && libvirtd -d -p {base / 'libvirtd.pid'} && "
                     if libvirt else "") +
                  f"touch {base / 'started'} && exec python3 -c {shlex.quote(REAPER)}")
        # a PID namespace of its own too: the node's probe sees its own processes (its libvirtd), not this machine's
        self.anchor = subprocess.Popen(["unshare", "--mount", "--net", "--pid", "--fork", "--mount-proc",
                                        "--propagation", "private", "sh", "-c", script],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        for _ in range(200):
            if (base / "started").exists() and (not libvirt or self.run("virsh", "-q", "version").returncode == 0):
                break
            if self.anchor.poll() is not None:
                raise RuntimeError(f"the node did not start: {self.anchor.stderr.read().decode()}")
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError("the node's libvirtd did not answer within 20 s")
        self.net = os.stat(f"/proc/{self.pid}/ns/net").st_ino

    @property
    def pid(self) -> int:
        """A process in the node's namespaces (the anchor, PID 1 there), for nsenter."""
        children = Path(f"/proc/{self.anchor.pid}/task/{self.anchor.pid}/children").read_text().split()
        return int(children[0])

    @property
    def libvirtd(self) -> int:
        """libvirtd's PID as this machine sees it."""
        inside = int((self.base / "libvirtd.pid").read_text())
        for pid in self.processes():
            status = Path(f"/proc/{pid}/status").read_text()
            nspid = next(line for line in status.splitlines() if line.startswith("NSpid:")).split()
            if int(nspid[-1]) == inside and len(nspid) > 2:
                return pid
        raise LookupError("the node's libvirtd is not running")

    def run(self, *argv: str, before: str = "", timeout: float = 180) -> subprocess.CompletedProcess:
        """``argv`` inside the node; ``before`` is shell run there first (the test's own, never an input)."""
        command = ["sh", "-c", (before + "; " if before else "") + 'exec "$@"', "sh", *argv]
        return subprocess.run(["nsenter", "-t", str(self.pid), "-m", "-n", "-p", *command], capture_output=True,
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

    def serve_lun(self, target: str, lun: Path, chap: tuple[str, str] | None = None) -> None:
        """Debian's tgtd in the node on 127.0.0.1:3260: ``target`` with one LUN, a new 64 MiB file at
        ``lun``, and with ``chap`` (user, password) a CHAP account bound to it."""
        with open(lun, "wb") as fh:
            fh.truncate(64 << 20)
        account = (f""" &&
            tgtadm --lld iscsi --op new --mode account --user {chap[0]} --password {chap[1]} &&
            tgtadm --lld iscsi --op bind --mode account --tid 1 --user {chap[0]}""" if chap else "")
        self.sh(f"""tgtd && sleep 0.5 &&
            tgtadm --lld iscsi --op new --mode target --tid 1 -T {target} &&
            tgtadm --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$1" &&
            tgtadm --lld iscsi --op bind --mode target --tid 1 -I ALL{account}""", str(lun))

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
        try:  # the node's PID 1: every process of its PID namespace ends with it
            os.kill(self.pid, signal.SIGKILL)
        except (OSError, IndexError, ValueError):
            pass
        for _ in range(50):
            leftover = self.processes()
            if not leftover:
                break
            for pid in leftover:  # anything that entered the network namespace alone
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        self.anchor.wait()
