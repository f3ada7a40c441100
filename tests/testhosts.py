"""Real test hosts: network namespaces with their own sshd, made and removed by the tests.

Topology: a client namespace holds a bridge; each host namespace is joined to it by a
veth pair. Addresses come from 10.213.0.0/24, which exists only inside these namespaces;
nothing is added to this machine's own interfaces, routes or firewall. Commands that
reach the hosts run inside the client namespace (``net.client_argv(...)``).

    with HostNetwork("pvt") as net:
        net.add_sshd_host("node1")
        net.add_sshd_host("intel1", cpuinfo=Path("tests/fixtures/cpuinfo/intel_vtx"))
        net.add_refusing_host("dead1")
        net.add_hung_host("hung1")
        subprocess.run(net.client_argv("provision", "preflight", "-i", net.write_inventory()))
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import yaml

HUNG_SERVER = """
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 22)); s.listen(64)
held = []
while True:
    held.append(s.accept()[0])  # accept and never speak
"""


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


class HostNetwork:
    """Namespaced hosts sharing one bridge in a client namespace; remove everything on close."""

    def __init__(self, prefix: str = "pvt", subnet: str = "10.213.0") -> None:
        self.prefix, self.subnet = prefix, subnet
        self.client = f"{prefix}-client"
        self.dir = Path(tempfile.mkdtemp(prefix=f"{prefix}-hosts-"))
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen] = []
        self.hosts: dict[str, dict] = {}
        self._next = 10
        self.cleanup_stale()
        self._add_namespace(self.client)
        self.ns(self.client, "ip", "link", "add", "br0", "type", "bridge")
        self.ns(self.client, "ip", "addr", "add", f"{subnet}.1/24", "dev", "br0")
        self.ns(self.client, "ip", "link", "set", "br0", "up")
        self.key = self.dir / "id_ed25519"
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key))
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.dir / "host_key"))
        (self.dir / "authorized_keys").write_text(self.key.with_suffix(".pub").read_text())
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory

    # -- building --------------------------------------------------------------------------------
    def cleanup_stale(self) -> None:
        """Remove namespaces a killed earlier run of this prefix left behind."""
        for line in sh("ip", "netns", "list").stdout.splitlines():
            name = line.split()[0] if line.strip() else ""
            if name.startswith(f"{self.prefix}-"):
                sh("ip", "netns", "pids", name, check=False)
                for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
                    sh("kill", "-9", pid, check=False)
                sh("ip", "netns", "del", name, check=False)

    def ns(self, name: str, *argv: str) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", name, *argv)

    def _add_namespace(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        self.ns(name, "ip", "link", "set", "lo", "up")

    def _add_host_namespace(self, name: str) -> tuple[str, str]:
        index = self._next
        self._next += 1
        ns = f"{self.prefix}-{index}"
        self._add_namespace(ns)
        outer, inner = f"{self.prefix}{index}a", f"{self.prefix}{index}b"
        sh("ip", "link", "add", outer, "netns", self.client, "type", "veth", "peer", "name", inner, "netns", ns)
        self.ns(self.client, "ip", "link", "set", outer, "master", "br0", "up")
        address = f"{self.subnet}.{index}"
        self.ns(ns, "ip", "addr", "add", f"{address}/24", "dev", inner)
        self.ns(ns, "ip", "link", "set", inner, "up")
        self.hosts[name] = {"ns": ns, "address": address}
        return ns, address

    def _start(self, argv: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        self.processes.append(proc)
        return proc

    def _wait_listening(self, ns: str, address: str) -> None:
        for _ in range(100):
            if f"{address}:22" in self.ns(ns, "ss", "-Hltn").stdout:
                return
            time.sleep(0.05)
        raise RuntimeError(f"nothing listens on {address}:22 in {ns}")

    def add_sshd_host(self, name: str, cpuinfo: Path | None = None, tmpfs: tuple[str, ...] = ()) -> str:
        """A host running sshd; with ``cpuinfo``, sshd sees that file as /proc/cpuinfo, and each ``tmpfs``
        folder as an empty tmpfs (a private mount namespace: what the host writes there stays its own)."""
        ns, address = self._add_host_namespace(name)
        config = self.dir / f"sshd_{name}.conf"
        config.write_text(textwrap.dedent(f"""\
            ListenAddress {address}
            HostKey {self.dir / 'host_key'}
            PidFile {self.dir / f'sshd_{name}.pid'}
            AuthorizedKeysFile {self.dir / 'authorized_keys'}
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            StrictModes no
            UseDNS no
            LogLevel ERROR
            MaxStartups 200
            """))
        sshd = ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)]
        if cpuinfo is not None or tmpfs:
            mounts = [f"mkdir -p {folder} && mount -t tmpfs tmpfs {folder}" for folder in tmpfs]
            if cpuinfo is not None:
                mounts.append(f"mount --bind {Path(cpuinfo).resolve()} /proc/cpuinfo")
            script = " && ".join(mounts) + ' && exec "$@"'
            argv = ["ip", "netns", "exec", ns, "unshare", "-m", "--propagation", "private", "sh", "-c", script,
                    "sh", *sshd]
        else:
            argv = ["ip", "netns", "exec", ns, *sshd]
        self._start(argv)
        self._wait_listening(ns, address)
        return address

    def add_node(self, name: str, node) -> str:
        """An apply test node (tests/applynode.py) joined to the bridge, running sshd in its own namespaces:
        what ssh runs there sees the node's overlays and its libvirtd."""
        index = self._next
        self._next += 1
        outer, inner = f"{self.prefix}{index}a", f"{self.prefix}{index}b"
        sh("ip", "link", "add", outer, "netns", self.client, "type", "veth", "peer", "name", inner, "netns", str(node.pid))
        self.ns(self.client, "ip", "link", "set", outer, "master", "br0", "up")
        address = f"{self.subnet}.{index}"
        node.sh(f'ip addr add {address}/24 dev {inner} && ip link set {inner} up && mkdir -p /run/sshd')
        self.hosts[name] = {"ns": None, "address": address}
        config = self.dir / f"sshd_{name}.conf"
        config.write_text(textwrap.dedent(f"""\
            ListenAddress {address}
            HostKey {self.dir / 'host_key'}
            PidFile {self.dir / f'sshd_{name}.pid'}
            AuthorizedKeysFile {self.dir / 'authorized_keys'}
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            UsePAM no
            StrictModes no
            UseDNS no
            LogLevel ERROR
            """))
        self._start(["nsenter", "-t", str(node.pid), "-m", "-n", "-p", "/usr/sbin/sshd", "-D", "-e", "-f", str(config)])
        for _ in range(100):
            if f"{address}:22" in node.run("ss", "-Hltn").stdout:
                return address
            time.sleep(0.05)
        raise RuntimeError(f"sshd of {name} does not listen on {address}:22")

    def add_managed_node(self, name: str, node) -> tuple[str, str]:
        """:meth:`add_node`, with the node's default route through the client namespace (its gateway):
        ``(address, the node's interface that carries it)``, for the host network's guarded commit."""
        address = self.add_node(name, node)
        node.sh(f"ip route add default via {self.subnet}.1")
        return address, f"{self.prefix}{address.rsplit('.', 1)[1]}b"

    def add_refusing_host(self, name: str) -> str:
        """A host that answers but has nothing on port 22: connection refused."""
        return self._add_host_namespace(name)[1]

    def add_hung_host(self, name: str) -> str:
        """A host that accepts TCP on port 22 and never speaks: a hung SSH handshake."""
        ns, address = self._add_host_namespace(name)
        self._start(["ip", "netns", "exec", ns, "python3", "-c", HUNG_SERVER, address])
        self._wait_listening(ns, address)
        return address

    # -- using -----------------------------------------------------------------------------------
    def ssh_args(self) -> str:
        known = self.dir / "known_hosts"
        return f"-o StrictHostKeyChecking=no -o UserKnownHostsFile={known} -o LogLevel=ERROR"

    def inventory_data(self, groups: dict[str, list[str]] | None = None, host_vars: dict | None = None) -> dict:
        """An Ansible YAML inventory of every host (or the given groups), with the key and ssh args."""
        host_vars = host_vars or {}

        def entry(name: str) -> dict:
            return {"ansible_host": self.hosts[name]["address"], **host_vars.get(name, {})}

        groups = groups or {"compute": list(self.hosts)}
        children = {g: {"hosts": {h: entry(h) for h in members}} for g, members in groups.items()}
        return {"all": {
            "vars": {"ansible_user": "root", "ansible_ssh_private_key_file": str(self.key),
                     "ansible_ssh_common_args": self.ssh_args()},
            "children": children,
        }}

    def write_inventory(self, data: dict | None = None, name: str = "inventory.yml") -> Path:
        path = self.dir / name
        path.write_text(yaml.safe_dump(data or self.inventory_data(), sort_keys=False))
        return path

    def client_argv(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.client, *argv]

    # -- removing --------------------------------------------------------------------------------
    def close(self) -> None:
        for proc in self.processes:
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
            proc.wait()
        for ns in reversed(self.namespaces):
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                sh("kill", "-9", pid, check=False)
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> HostNetwork:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
