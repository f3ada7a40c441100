"""A bare node for bootstrap tests: a fresh Debian 12 root filesystem (mmdebstrap, minbase with
openssh-server and python3), run in mount, PID and network namespaces of its own, with its own sshd
and its own ``/dev`` (a tmpfs with nodes made by mknod: ``/dev/kvm`` is ``0600 root:root``, as on a
machine without udev rules). Nothing of this machine is shared but the kernel: what the node's package
scripts do to ``/dev/kvm``, ``/etc`` or the network stays in the node.

Its apt reaches the mirror only through an HTTP proxy on this machine's loopback (Debian's
apt-cacher-ng, which also keeps the packages between tests), bridged into the node's network
namespace over a unix socket by socat; no interface, route or firewall rule of this machine changes.

    proxy = AptProxy(cache)                 # once per session
    node = FreshNode(tmp_path, proxy)       # 2 s: a copy of the cached root filesystem
    address = node.attach(net, "bare1")     # a veth into a HostNetwork's bridge, then its sshd
    ...
    node.stop(); proxy.stop()
"""

from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

CACHE = Path(os.environ.get("PROVISION_TEST_CACHE", "/var/cache/provision-tests"))
SUITE = "bookworm"
PROXY_PORT = 3142  # inside the node: apt's proxy, bridged to the one on this machine
# PID 1 of the node: reaps what dies there
REAPER = "import os, time\nwhile True:\n    try:\n        os.wait()\n    except ChildProcessError:\n        time.sleep(1)\n"
DEVICES = (  # name, mode, major, minor: what a machine without udev rules has
    ("null", "666", 1, 3), ("zero", "666", 1, 5), ("full", "666", 1, 7), ("random", "666", 1, 8),
    ("urandom", "666", 1, 9), ("tty", "666", 5, 0), ("kvm", "600", 10, 232), ("net/tun", "666", 10, 200),
    ("vhost-net", "600", 10, 238),
)


def rootfs() -> Path:
    """The cached tarball of a fresh root filesystem, built once (about 20 s) and kept between runs."""
    tar = CACHE / f"{SUITE}-minbase.tar"
    if tar.exists():
        return tar
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not tar.exists():
            partial = tar.with_suffix(".partial")
            subprocess.run(["mmdebstrap", "--quiet", "--format=tar", "--variant=minbase",
                            "--include=openssh-server,python3", SUITE, str(partial)], check=True,
                           capture_output=True, timeout=600)
            partial.rename(tar)
    return tar


MARK = ".provision-test-node"  # in each bare node's root: what a later run recognises it by


def reap_stale() -> list[int]:
    """Kill what a killed earlier run left: every process inside a bare node's root (its PID 1, sshd,
    libvirtd, dnsmasq) and this machine's socat and apt-cacher-ng of the tests; the PIDs killed."""
    killed = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            inside = os.path.exists(f"/proc/{pid}/root/{MARK}")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ours = cmdline[0].endswith((b"socat", b"apt-cacher-ng")) and any(
            b"proxy.sock" in a or b"acng-conf" in a for a in cmdline)
        if inside or ours:
            try:
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
            except ProcessLookupError:
                pass
    return killed


def _free_port() -> int:
    """A free port on loopback below 10000 (apt-cacher-ng fails to bind some higher ones: 'Error
    resolving address for binding')."""
    for port in range(3142, 3300):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for the apt proxy in 3142-3299")


class AptProxy:
    """apt-cacher-ng on this machine's loopback, its cache under :data:`CACHE` (kept between runs)."""

    def __init__(self, base: Path) -> None:
        self.port = _free_port()
        (CACHE / "apt-cacher-ng").mkdir(parents=True, exist_ok=True)
        (base / "acng-log").mkdir(parents=True, exist_ok=True)
        # a configuration of its own: no remapping to Debian's list of mirrors (this machine may reach
        # only the one its own apt names), so it proxies and caches each address as asked
        (base / "acng-conf").mkdir(exist_ok=True)
        (base / "acng-conf" / "acng.conf").write_text("SupportDir: /usr/lib/apt-cacher-ng\nReportPage: acng-report.html\n")
        self.proc = subprocess.Popen(
            ["/usr/sbin/apt-cacher-ng", "-c", str(base / "acng-conf"), "ForeGround=1", f"Port={self.port}",
             "BindAddress=127.0.0.1", f"CacheDir={CACHE / 'apt-cacher-ng'}", f"LogDir={base / 'acng-log'}",
             f"SocketPath={base / 'acng.socket'}", f"PidFile={base / 'acng.pid'}", "ExThreshold=365"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"apt-cacher-ng did not start: {self.proc.stderr.read().decode()}") from None
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("apt-cacher-ng does not listen within 10 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


class FreshNode:
    __test__ = False

    def __init__(self, base: Path, proxy: AptProxy | None, *, mirror: str = "") -> None:
        """``mirror``: the node's apt sources name this mirror instead (an unreachable one, for a test)."""
        self.base, self.root = base, base / "root"
        self.root.mkdir(parents=True)
        self.processes: list[subprocess.Popen] = []
        subprocess.run(["tar", "-x", "-f", str(rootfs()), "-C", str(self.root)], check=True, capture_output=True)
        (self.root / MARK).touch()
        if proxy is not None:
            self.write("/etc/apt/apt.conf.d/01proxy", f'Acquire::http::Proxy "http://127.0.0.1:{PROXY_PORT}";\n')
        if mirror:
            self.write("/etc/apt/sources.list", f"deb {mirror} {SUITE} main\n")
        devices = " && ".join(
            f"mknod -m {mode} \"$R/dev/{name}\" c {major} {minor}" for name, mode, major, minor in DEVICES)
        script = f"""set -e
R={shlex.quote(str(self.root))}
mount --bind "$R" "$R"
mount -t proc proc "$R/proc"
mount -t sysfs sysfs "$R/sys"
mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup" || true
mount -t tmpfs -o mode=755 tmpfs "$R/dev"
mkdir "$R/dev/net" "$R/dev/pts" "$R/dev/shm"
{devices}
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$R/dev/pts"
mknod -m 666 "$R/dev/ptmx" c 5 2; ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"; ln -s /proc/self/fd/1 "$R/dev/stdout"; ln -s /proc/self/fd/2 "$R/dev/stderr"
mount -t tmpfs tmpfs "$R/dev/shm"
mount -t tmpfs -o mode=755 tmpfs "$R/run"
mkdir -p "$R/run/sshd" "$R/run/lock"
mount -t tmpfs tmpfs "$R/tmp"
ip link set lo up
touch {shlex.quote(str(base / 'started'))}
exec chroot "$R" /usr/bin/python3 -c {shlex.quote(REAPER)}
"""
        self.anchor = subprocess.Popen(["unshare", "--mount", "--net", "--pid", "--fork", "--propagation", "private",
                                        "sh", "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       start_new_session=True)
        for _ in range(100):
            if (base / "started").exists():
                break
            if self.anchor.poll() is not None:
                raise RuntimeError(f"the node did not start: {self.anchor.stderr.read().decode()}")
            time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError("the node did not start within 5 s")
        time.sleep(0.1)  # the anchor's exec into the reaper
        if proxy is not None:
            self._bridge_proxy(proxy)

    @property
    def pid(self) -> int:
        """The node's PID 1 as this machine sees it, for nsenter."""
        children = Path(f"/proc/{self.anchor.pid}/task/{self.anchor.pid}/children").read_text().split()
        return int(children[0])

    def _start(self, argv: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        self.processes.append(proc)
        return proc

    def _bridge_proxy(self, proxy: AptProxy) -> None:
        """socat: the node's 127.0.0.1:3142 → a unix socket → this machine's proxy."""
        sock = self.base / "proxy.sock"
        self._start(["socat", f"UNIX-LISTEN:{sock},fork", f"TCP:127.0.0.1:{proxy.port}"])
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.02)
        # in the node's network namespace only: socat itself (and the socket's path) stay this machine's
        self._start(["nsenter", "-t", str(self.pid), "-n", "socat",
                     f"TCP-LISTEN:{PROXY_PORT},bind=127.0.0.1,reuseaddr,fork", f"UNIX-CONNECT:{sock}"])

    def attach(self, net, name: str) -> str:
        """Join the node to ``net``'s bridge (tests/testhosts.py) by a veth pair, and start the node's own
        sshd (its own binary, keys and configuration) with ``net``'s key authorised for root."""
        index = net._next
        net._next += 1
        outer, inner = f"{net.prefix}{index}a", f"{net.prefix}{index}b"
        address = f"{net.subnet}.{index}"
        subprocess.run(["ip", "link", "add", outer, "netns", net.client, "type", "veth", "peer", "name", inner,
                        "netns", str(self.pid)], check=True, capture_output=True)
        net.ns(net.client, "ip", "link", "set", outer, "master", "br0", "up")
        for argv in (["ip", "addr", "add", f"{address}/24", "dev", inner], ["ip", "link", "set", inner, "up"],
                     ["ip", "route", "add", "default", "via", f"{net.subnet}.1"]):
            subprocess.run(["nsenter", "-t", str(self.pid), "-n", *argv], check=True, capture_output=True)
        self.write("/root/.ssh/authorized_keys", net.key.with_suffix(".pub").read_text(), mode=0o600)
        net.hosts[name] = {"ns": None, "address": address}
        self._start(["nsenter", "-t", str(self.pid), "-m", "-n", "-p", "-r", "-w", "/usr/sbin/sshd", "-D", "-e",
                     "-o", f"ListenAddress={address}", "-o", "PasswordAuthentication=no", "-o", "UseDNS=no",
                     "-o", "LogLevel=ERROR", "-o", "MaxStartups=100"])
        for _ in range(100):
            if f"{address}:22" in self.run("cat", "/proc/net/tcp").stdout or self._listening(address):
                return address
            time.sleep(0.05)
        raise RuntimeError(f"the node's sshd does not listen on {address}:22")

    def _listening(self, address: str) -> bool:
        ss = subprocess.run(["nsenter", "-t", str(self.pid), "-n", "ss", "-Hltn"], capture_output=True, text=True)
        return f"{address}:22" in ss.stdout

    def run(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """``argv`` inside the node, with the node's own root and programs."""
        return subprocess.run(["nsenter", "-t", str(self.pid), "-m", "-n", "-p", "-r", "-w", *argv],
                              capture_output=True, text=True, timeout=timeout)

    def sh(self, script: str, *args: str) -> str:
        """The test's own ``script`` run inside the node; its output."""
        result = self.run("sh", "-c", script, "sh", *args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def path(self, target: str) -> Path:
        return self.root / target.lstrip("/")

    def write(self, target: str, text: str, mode: int = 0o644) -> None:
        path = self.path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)

    def stop(self) -> None:
        """End every process of the node (its PID 1 takes its PID namespace along), then unmount and
        remove its root filesystem."""
        try:
            os.kill(self.pid, signal.SIGKILL)
        except (OSError, IndexError, ValueError):
            pass
        for proc in self.processes:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        try:
            os.killpg(self.anchor.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.anchor.wait()
        # the mounts were the namespace's own: they went with it; what is left is plain files
        shutil.rmtree(self.root, ignore_errors=True)
