"""The canary guest: Debian's cloud kernel and a busybox initramfs whose init prints a marker.

Built from Debian packages into a cache outside the repository (``$PROVISION_CACHE``, else
``/var/cache/provision`` for root, where QEMU's user can read it, else ``~/.cache/provision``);
nothing binary is committed. ``provision canary build`` (or
``scripts/build-canary``) makes it; tests and ``provision smoke`` use it.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from provision.errors import InputError

MARKER = "provision-canary: ready"
POWEROFF_MARKER = "provision-canary: power button, powering off"
DISK_MARKER = "provision-canary: disk"  # then: the disk, ok or FAILED, and the uptime before and after
KERNEL_META = "linux-image-cloud-amd64"
BUSYBOX = "/bin/busybox"
# in load order: the power button as an input event (a graceful shutdown), virtio for the balloon
# (set-memory) and for disks (so a hot-unplug is acknowledged)
MODULES = ("input/evdev.ko", "acpi/button.ko", "virtio/virtio_ring.ko", "virtio/virtio.ko",
           "virtio/virtio_pci_legacy_dev.ko", "virtio/virtio_pci_modern_dev.ko", "virtio/virtio_pci.ko",
           "virtio/virtio_balloon.ko", "block/virtio_blk.ko")

INIT = f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for module in $(cat /lib/modules.order); do insmod "/lib/$module" 2>/dev/null; done
sleep 0.2
# a graceful shutdown is an ACPI power button press: the first input event from it powers off
for dev in /sys/class/input/event*; do
  if grep -q "Power Button" "$dev/device/name" 2>/dev/null; then
    (head -c 1 "/dev/input/${{dev##*/}}" >/dev/null; echo "{POWEROFF_MARKER}" >/dev/console; poweroff -f) &
  fi
done
# storage smoke: with provision.token on the command line, each disk gets a marker written and read back
# past the page cache (sector 0; the last sector of a borrowed disk, put back after), timed by uptime
token=""; borrow=""
for word in $(cat /proc/cmdline); do
  case "$word" in provision.token=*) token="${{word#*=}}";; provision.borrow=*) borrow="${{word#*=}}";; esac
done
if [ -n "$token" ]; then
  for dev in /sys/block/vd*; do
    [ -e "$dev" ] || continue
    name="${{dev##*/}}"; seek=0
    case ",$borrow," in *",$name,"*) seek=$(( $(cat "$dev/size") - 1 ));; esac
    t0=$(cut -d' ' -f1 /proc/uptime)
    [ "$seek" = 0 ] || dd if="/dev/$name" of=/saved bs=512 skip="$seek" count=1 2>/dev/null
    echo "provision-disk $token $name" > /mark
    why=$(dd if=/mark of="/dev/$name" bs=512 seek="$seek" count=1 conv=sync,fsync 2>&1 >/dev/null) && why=""
    echo 3 > /proc/sys/vm/drop_caches
    result=FAILED
    dd if="/dev/$name" bs=512 skip="$seek" count=1 2>/dev/null | grep -q "provision-disk $token $name" && result=ok
    [ "$seek" = 0 ] || dd if=/saved of="/dev/$name" bs=512 seek="$seek" count=1 conv=fsync 2>/dev/null
    echo "{DISK_MARKER} $name $result $t0 $(cut -d' ' -f1 /proc/uptime) sector $seek of $(cat "$dev/size") $why" >/dev/console
  done
fi
echo "{MARKER} cpus=$(grep -c ^processor /proc/cpuinfo) mem_kb=$(awk '/MemTotal/{{print $2}}' /proc/meminfo)" >/dev/console
while true; do sleep 3600; done
"""


@dataclass(frozen=True)
class Canary:
    kernel: Path
    initrd: Path
    cmdline: str = "console=ttyS0 panic=-1 quiet"


def cache_dir() -> Path:
    default = Path("/var/cache/provision") if os.geteuid() == 0 else Path.home() / ".cache" / "provision"
    return Path(os.environ.get("PROVISION_CACHE", default)) / "canary"


def find_canary() -> Canary:
    """The built canary, or an InputError saying how to build it."""
    folder = cache_dir()
    kernel, initrd = folder / "vmlinuz", folder / "initrd.gz"
    if not (kernel.is_file() and initrd.is_file()):
        raise InputError(f"no canary guest in {folder}: build it with `provision canary build`")
    stamp = folder / "INIT.sha256"
    if not stamp.is_file() or stamp.read_text().strip() != init_digest():
        raise InputError(f"the canary guest in {folder} was built from an older init: rebuild it with "
                         "`provision canary build`")
    return Canary(kernel, initrd)


def init_digest() -> str:
    """The sha256 of :data:`INIT`, kept beside a built canary: one built from another init is stale."""
    import hashlib

    return hashlib.sha256(INIT.encode()).hexdigest()


def _run(*argv: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        raise InputError(f"{' '.join(argv)} failed: {proc.stderr.strip()[-300:]}")
    return proc.stdout


def build_canary(*, force: bool = False) -> Canary:
    """Fetch Debian's cloud kernel with apt-get download, unpack it with dpkg -x, and pack a
    busybox-static initramfs around :data:`INIT`."""
    folder = cache_dir()
    if not force:
        try:
            return find_canary()
        except InputError:
            pass
    if not Path(BUSYBOX).is_file():
        raise InputError(f"{BUSYBOX} is missing: apt-get install busybox-static")
    depends = _run("apt-cache", "depends", KERNEL_META)
    package = next((line.split()[-1] for line in depends.splitlines() if "Depends: linux-image-" in line), None)
    if not package:
        raise InputError(f"apt-cache finds no kernel behind {KERNEL_META}: run apt-get update")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)  # apt-get download runs as _apt where it can
        _run("apt-get", "download", "-q", package, cwd=work)
        deb = next(work.glob("*.deb"))
        _run("dpkg", "-x", str(deb), str(work / "pkg"))
        vmlinuz = next((work / "pkg" / "boot").glob("vmlinuz-*"))
        modules = [next((work / "pkg" / "lib" / "modules").glob(f"*/kernel/drivers/{m}")) for m in MODULES]
        root = work / "initramfs"
        for sub in ("bin", "proc", "sys", "dev", "lib"):
            (root / sub).mkdir(parents=True)
        shutil.copy2(BUSYBOX, root / "bin" / "busybox")
        for module in modules:
            shutil.copy2(module, root / "lib" / module.name)
        (root / "lib" / "modules.order").write_text("\n".join(m.name for m in modules) + "\n")
        (root / "init").write_text(INIT)
        os.chmod(root / "init", 0o755)
        names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
        proc = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root,
                              input=("\n".join(names) + "\n").encode(), capture_output=True)
        if proc.returncode:
            raise InputError(f"cpio failed: {proc.stderr.decode()[-300:]}")
        with gzip.open(work / "initrd.gz", "wb", compresslevel=6) as fh:
            fh.write(proc.stdout)
        shutil.copy2(vmlinuz, folder / "vmlinuz")
        shutil.move(work / "initrd.gz", folder / "initrd.gz")
        (folder / "SOURCE").write_text(f"kernel: {deb.name}\nbusybox: {BUSYBOX}\n")
        (folder / "INIT.sha256").write_text(init_digest() + "\n")
    return find_canary()


@dataclass(frozen=True)
class NodeCanary:
    """The canary as a node sees it, for the probe's boot operation (``provision_probe_functional``):
    the paths of its kernel and initramfs on the node, how to boot it and what marks a boot, and how long
    one boot may take. ``unavailable`` says why it could not be put on the node (then no path is set)."""

    kernel: str = ""
    initrd: str = ""
    cmdline: str = Canary.cmdline
    marker: str = MARKER
    timeout: float = 15
    unavailable: str | None = None


# the node's cache: root's beside the system's, another user's in its home; one folder per canary version
_NODE_CACHE = ('if [ "$(id -u)" = 0 ]; then d=/var/cache/provision/canary/$1; '
               'else d=${XDG_CACHE_HOME:-$HOME/.cache}/provision/canary/$1; fi')
_NODE_SUMS = _NODE_CACHE + '; cd "$d" 2>/dev/null && sha256sum vmlinuz initrd.gz 2>/dev/null; echo "folder $d"'
_NODE_PUT = _NODE_CACHE + '; umask 022 && mkdir -p "$d" && cat > "$d/.$2.part" && mv -f "$d/.$2.part" "$d/$2"'
_sums: dict[tuple, dict[str, str]] = {}


def file_sums(canary: Canary) -> dict[str, str]:
    """{node file name: sha256} of the canary's two files (kept while their size and time are the same)."""
    import hashlib

    key = tuple((p, p.stat().st_size, p.stat().st_mtime_ns) for p in (canary.kernel, canary.initrd))
    if key not in _sums:
        _sums[key] = {name: hashlib.sha256(path.read_bytes()).hexdigest()
                      for name, path in (("vmlinuz", canary.kernel), ("initrd.gz", canary.initrd))}
    return _sums[key]


def on_node(spec, *, timeout: float, boot_timeout: float = 15) -> NodeCanary:
    """Put the canary on the node behind ``spec`` (a HostSpec) unless the node has this version
    already (checked by sha256 on the node, before and after a copy), and say where it is. The local
    node uses the local cache as it is; an ssh:// node gets a copy over ssh, whole files or none (each
    written beside its name, then renamed). Any other transport, or a failure, sets ``unavailable``."""
    try:
        canary = find_canary()
    except InputError as exc:
        return NodeCanary(timeout=boot_timeout, unavailable=str(exc))
    if spec.is_local:
        return NodeCanary(str(canary.kernel), str(canary.initrd), canary.cmdline, timeout=boot_timeout)
    if spec.scheme != "ssh":
        return NodeCanary(timeout=boot_timeout, unavailable=f"the canary is sent to local and ssh:// nodes only, "
                                                            f"not over {spec.scheme}://")
    sums = file_sums(canary)
    version = version_of(sums)
    try:
        folder, found = _node_sums(spec, version, timeout)
        for name, local in (("vmlinuz", canary.kernel), ("initrd.gz", canary.initrd)):
            if found.get(name) != sums[name]:
                _ssh(spec, _NODE_PUT, [version, name], timeout, stdin=local)
        folder, found = _node_sums(spec, version, timeout)
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        return NodeCanary(timeout=boot_timeout, unavailable=f"cannot copy the canary to the node: {exc}")
    if found != sums:
        return NodeCanary(timeout=boot_timeout, unavailable=f"the canary's copy in {folder} on the node does not "
                                                            "match its sha256 after the copy")
    return NodeCanary(f"{folder}/vmlinuz", f"{folder}/initrd.gz", canary.cmdline, timeout=boot_timeout)


def version_of(sums: dict[str, str]) -> str:
    """The canary version's folder name on a node: 16 hex digits of a hash of both files' hashes."""
    import hashlib

    return hashlib.sha256("".join(sums[k] for k in sorted(sums)).encode()).hexdigest()[:16]


def _node_sums(spec, version: str, timeout: float) -> tuple[str, dict[str, str]]:
    out = _ssh(spec, _NODE_SUMS, [version], timeout)
    found, folder = {}, ""
    for line in out.splitlines():
        if line.startswith("folder "):
            folder = line[len("folder "):]
        elif len(words := line.split()) == 2:
            found[words[1]] = words[0]
    return folder, found


def _ssh(spec, script: str, args: list[str], timeout: float, stdin: Path | None = None) -> str:
    """``sh -c script sh ARGS...`` on the node over ssh (every argument quoted for its shell)."""
    from shlex import quote

    from provision.remote.ssh import ArgvSshBackend

    command = " ".join(quote(w) for w in ("sh", "-c", script, "sh", *args))
    argv = ArgvSshBackend(spec, timeout=max(1, int(timeout))).argv(command)
    with open(stdin, "rb") if stdin else open(os.devnull, "rb") as source:
        proc = subprocess.run(argv, stdin=source, capture_output=True, timeout=timeout + 60)
    if proc.returncode:
        raise RuntimeError((proc.stderr.decode(errors="replace").strip().splitlines() or [f"exit {proc.returncode}"])[-1])
    return proc.stdout.decode(errors="replace")
