"""A real single-node Ceph cluster for the tests, from Debian 12's packages (Ceph 16): one monitor, one
OSD (memstore: its objects in memory, 1 GiB), one manager (libvirt's pool asks the cluster's capacity,
which the manager reports), started without systemd or containers, with every file in a folder of the
test (``-c`` its own ceph.conf: this machine's /etc/ceph is never read or written).

It runs in the network namespace ``run`` enters (an apply test node's, so the node's libvirt reaches it
on 127.0.0.1:6789), and ends with it; pools have size 1. About 7 s to start, under 400 MiB.

    cluster = CephCluster(tmp_path / "ceph", node.run)
    cluster.create_pool("vms")
    key = cluster.client_key("nova", "vms")      # 'profile rbd' on the pool, as nova's key has
"""

from __future__ import annotations

import uuid
from pathlib import Path

MON = "127.0.0.1:6789"
CONF = """[global]
fsid = {fsid}
mon host = {mon}
mon initial members = a
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
ms bind msgr2 = false
run dir = {base}/run
admin socket = {base}/run/$name.asok
log file = {base}/log/$name.log
pid file = {base}/run/$name.pid
keyring = {base}/$name.keyring
[mon.a]
mon data = {base}/mon-a
[osd]
osd data = {base}/osd-$id
osd objectstore = memstore
memstore device bytes = 1073741824
[mgr]
mgr data = {base}/mgr-$id
"""


class CephCluster:
    __test__ = False

    def __init__(self, base: Path, run) -> None:
        """``run(*argv)``: a command where the cluster is to run (returns a CompletedProcess)."""
        self.base, self._run = base, run
        for folder in ("run", "log", "mon-a", "osd-0", "mgr-x"):
            (base / folder).mkdir(parents=True)
        self.fsid = str(uuid.uuid4())
        self.conf = base / "ceph.conf"
        self.conf.write_text(CONF.format(fsid=self.fsid, mon=MON, base=base))
        b = str(base)
        self.sh(f"ceph-authtool --create-keyring {b}/mon.a.keyring --gen-key -n mon. --cap mon 'allow *'")
        self.sh(f"ceph-authtool --create-keyring {b}/client.admin.keyring --gen-key -n client.admin --cap mon 'allow *' "
                f"--cap osd 'allow *' --cap mgr 'allow *'")
        self.sh(f"ceph-authtool {b}/mon.a.keyring --import-keyring {b}/client.admin.keyring")
        self.sh(f"monmaptool --create --add a {MON} --fsid {self.fsid} {b}/monmap")
        self.sh(f"ceph-mon -c {self.conf} --mkfs -i a --monmap {b}/monmap --keyring {b}/mon.a.keyring")
        self.sh(f"ceph-mon -c {self.conf} -i a")
        osd = str(uuid.uuid4())
        number = self.ceph("osd", "new", osd).strip()
        self.ceph("auth", "get-or-create", f"osd.{number}", "mon", "allow profile osd", "mgr", "allow profile osd",
                  "osd", "allow *", "-o", f"{b}/osd.{number}.keyring")
        self.sh(f"ceph-osd -c {self.conf} -i {number} --mkfs --osd-uuid {osd}")
        self.sh(f"ceph-osd -c {self.conf} -i {number}")
        self.ceph("auth", "get-or-create", "mgr.x", "mon", "allow profile mgr", "osd", "allow *", "-o", f"{b}/mgr.x.keyring")
        self.sh(f"ceph-mgr -c {self.conf} -i x")

    def sh(self, script: str) -> str:
        done = self._run("sh", "-c", script)
        if done.returncode:
            raise RuntimeError(f"{script}: {done.stderr.strip()[-800:]}")
        return done.stdout

    def ceph(self, *args: str) -> str:
        done = self._run("ceph", "-c", str(self.conf), "--connect-timeout", "20", *args)
        if done.returncode:
            raise RuntimeError(f"ceph {' '.join(args)}: {done.stderr.strip()[-800:]}")
        return done.stdout

    def rbd(self, *args: str, user: str = "admin") -> str:
        done = self._run("rbd", "-c", str(self.conf), "--id", user, *args)
        if done.returncode:
            raise RuntimeError(f"rbd {' '.join(args)}: {done.stderr.strip()[-800:]}")
        return done.stdout

    def create_pool(self, name: str) -> None:
        self.ceph("osd", "pool", "create", name, "8")
        self.rbd("pool", "init", name)

    def client_key(self, user: str, pool: str) -> str:
        """A client key with nova's usual caps on ``pool``; its keyring is kept beside the others."""
        self.ceph("auth", "get-or-create", f"client.{user}", "mon", "profile rbd", "osd", f"profile rbd pool={pool}",
                  "-o", str(self.base / f"client.{user}.keyring"))
        return self.ceph("auth", "get-key", f"client.{user}").strip()

    def rotate_key(self, user: str, pool: str) -> str:
        """A new key for ``user`` (the old one stops working), as after a rotation."""
        self.ceph("auth", "del", f"client.{user}")
        return self.client_key(user, pool)

    def stats(self) -> dict:
        import json

        return json.loads(self.ceph("df", "-f", "json"))["stats"]


def wait_healthy(cluster: CephCluster, timeout: float = 60) -> None:
    """Until every placement group is active (a pool just made peers for a moment)."""
    import json
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = json.loads(cluster.ceph("-s", "-f", "json"))
        pgs = status.get("pgmap", {})
        active = sum(s["count"] for s in pgs.get("pgs_by_state", []) if s["state_name"].startswith("active"))
        if pgs.get("num_pgs") and active == pgs["num_pgs"]:
            return
        time.sleep(0.5)
    raise RuntimeError(f"placement groups not active within {timeout:g} s: {cluster.ceph('-s')}")
