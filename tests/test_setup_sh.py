"""setup.sh on a machine whose libvirtd is already running without the RBD storage driver: it installs
the driver and restarts the daemon, and a rendered RBD pool then defines.

The machine is simulated in namespaces, with the real packages: overlays over /usr, /var and /etc (so
dpkg and apt change nothing outside), an empty network namespace, its own PID namespace (so setup.sh's
pkill sees only this libvirtd), and apt pointed at a local repository holding Debian's own .deb of
the driver (APT_CONFIG, apt's documented override), so no network is needed."""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import provision_bin

pytestmark = [pytest.mark.libvirt, pytest.mark.netns]

REPO = Path(__file__).resolve().parent.parent
DRIVER = "libvirt-daemon-driver-storage-rbd"

# Runs as PID 1 of the new namespaces; everything it starts dies with it, and its mounts vanish.
SCRIPT = r"""
set -u
work=$1 pool=$2
mount -t tmpfs tmpfs "$work/ov"
for d in usr var etc; do
  mkdir -p "$work/ov/$d/upper" "$work/ov/$d/work"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$work/ov/$d/upper,workdir=$work/ov/$d/work" "/$d"
done
mount -t tmpfs tmpfs /run && mkdir -p /run/lock
for d in /etc/libvirt/qemu /etc/libvirt/storage /etc/libvirt/secrets /var/lib/libvirt; do
  mount -t tmpfs tmpfs "$d"   # no libvirt object of this machine is seen, let alone started
done
dpkg -r DRIVER >/dev/null 2>&1 || { echo "STEP dpkg -r failed"; exit 1; }
virtlogd -d && libvirtd -d
for _ in $(seq 100); do virsh -q -c qemu:///system version >/dev/null 2>&1 && break; sleep 0.2; done
echo "BEFORE_PID $(pgrep -x libvirtd)"
virsh -q -c qemu:///system pool-define "$pool" 2>&1 | sed 's/^/BEFORE /'
APT_CONFIG="$work/apt.conf" bash "$3/setup.sh" --system 2>&1 | sed 's/^/SETUP /'
echo "SETUP_RC ${PIPESTATUS[0]}"
echo "AFTER_PID $(pgrep -x libvirtd)"
dpkg-query -W -f='${Status}\n' DRIVER | sed 's/^/DPKG /'
virsh -c qemu:///system pool-define "$pool" 2>&1 | sed 's/^/AFTER /'
virsh -q -c qemu:///system pool-list --all --name | sed 's/^/POOLS /'
""".replace("DRIVER", DRIVER)


def driver_deb(folder: Path) -> Path:
    """Debian's .deb of the installed driver version: apt's cache, else downloaded from the mirror."""
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", DRIVER], capture_output=True, text=True,
                             check=True).stdout
    cached = Path("/var/cache/apt/archives") / f"{DRIVER}_{version.replace(':', '%3a')}_amd64.deb"
    if cached.exists():
        return Path(shutil.copy(cached, folder))
    subprocess.run(["apt-get", "download", "-qq", f"{DRIVER}={version}"], cwd=folder, check=True,
                   capture_output=True)
    return next(folder.glob(f"{DRIVER}_*.deb"))


@pytest.fixture
def rbd_pool_xml(tmp_path):
    """The RBD pool as provision renders it."""
    key = tmp_path / "nova.key"
    key.write_text("AQBzdW1tYXJ5LWtleS1ub3QtcmVhbC0xMjM0NTY3OA==\n")
    inv = tmp_path / "site.yml"
    inv.write_text(
        "all:\n  hosts:\n    n1: {ansible_connection: local}\n  vars:\n    provision:\n      virt_type: qemu\n"
        "      storage:\n        - {name: vms, type: rbd, pool: vms, monitors: [192.0.2.61], user: nova,\n"
        f"           secret_uuid: 457eb676-33da-42ec-9a8c-9293d545c337, key_file: {key}}}\n")
    out = tmp_path / "out"
    subprocess.run([provision_bin(), "render", "-i", str(inv), "--out", str(out)], check=True, capture_output=True)
    (pool,) = (out / "n1").rglob("pool-vms.xml")
    return pool


def test_setup_restarts_a_running_libvirtd_so_a_new_storage_driver_loads(tmp_path, rbd_pool_xml):
    if subprocess.run(["dpkg-query", "-W", DRIVER], capture_output=True).returncode:
        pytest.fail(f"{DRIVER} is not installed here: run setup.sh first")
    repo = tmp_path / "repo"
    repo.mkdir()
    driver_deb(repo)
    packages = subprocess.run(["dpkg-scanpackages", "."], cwd=repo, capture_output=True, text=True, check=True)
    (repo / "Packages").write_text(packages.stdout)
    (tmp_path / "parts").mkdir()
    (tmp_path / "sources.list").write_text(f"deb [trusted=yes] file:{repo} ./\n")
    (tmp_path / "apt.conf").write_text(f'Dir::Etc::SourceList "{tmp_path}/sources.list";\n'
                                       f'Dir::Etc::SourceParts "{tmp_path}/parts";\nAcquire::Languages "none";\n'
                                       # the repository is in root's 0700 test folder
                                       'APT::Sandbox::User "root";\n')
    (tmp_path / "ov").mkdir()
    run = subprocess.run(["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc",
                          "--net", "bash", "-c", SCRIPT, "script", str(tmp_path), str(rbd_pool_xml), str(REPO)],
                         capture_output=True, text=True, timeout=300)
    out = run.stdout
    lines = {}
    for line in out.splitlines():
        tag, _, rest = line.partition(" ")
        lines.setdefault(tag, []).append(rest)
    assert "STEP" not in lines, out + run.stderr
    # before: the running daemon has no RBD backend, so libvirt refuses the pool
    assert any("missing backend for pool type" in s and "rbd" in s for s in lines.get("BEFORE", [])), out
    # setup.sh installed the driver from the repository, said why it restarts libvirtd, and succeeded
    assert lines["SETUP_RC"] == ["0"], out
    assert "setup.sh: restarting libvirtd to load the drivers just installed" in lines.get("SETUP", []), out
    assert lines["DPKG"] == ["install ok installed"], out
    assert lines["BEFORE_PID"][0] and lines["AFTER_PID"][0] and lines["BEFORE_PID"] != lines["AFTER_PID"], out
    # after: the same rendered pool defines
    assert lines["AFTER"][0] == "Pool vms defined from " + str(rbd_pool_xml), out
    assert [p.strip() for p in lines["POOLS"]] == ["vms"], out
