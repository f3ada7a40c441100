"""The probe: run on a node (stdlib only, Python 3.6+) to gather every fact in one round trip.

It is sent as ``python3 -I -S -c SOURCE``, with ``main({key: operation})`` appended to
SOURCE, and prints ``{key: answer}`` as one JSON object: the node pays about 3 ms to import json,
the controller reads 100 KB of answers in under 1 ms (``ast.literal_eval`` of the same as a Python
literal took 23 ms of the controller's CPU per node). Imports are kept to what every run needs
(start-up is most of its cost when a fleet is probed at once); the rest are local.
Every answer is a dict; one that could not be had carries ``error``.
It changes nothing on the node.
"""
import errno
import os
import stat
import sys

TYPE_CHECKING_NODE = False  # mypy takes it as true (pyproject's always_true): the node imports no typing
if TYPE_CHECKING_NODE:
    from typing import Any  # noqa: F401

MAX_READ = 4 * 1024 * 1024


def _err(exc):
    code = errno.errorcode.get(getattr(exc, "errno", None) or 0, type(exc).__name__)
    return {"error": "%s: %s" % (code, getattr(exc, "strerror", None) or exc)}


def op_read(spec):
    path = spec["path"].replace("{release}", os.uname().release)
    if path.endswith(".gz"):
        import gzip

        opener = gzip.open  # type: Any
    else:
        opener = open
    with opener(path, "rb") as fh:
        text = fh.read(spec.get("max", MAX_READ)).decode("utf-8", "replace")
    if spec.get("first_paragraph"):  # e.g. the first CPU of /proc/cpuinfo, not all 256
        text = text.split("\n\n", 1)[0] + "\n"
    if "keep" in spec:  # only the lines that name what was asked for
        text = lines_with(text, spec["keep"])
    return {"path": path, "text": text}


def lines_with(text, keep):
    """The lines of ``text`` (ended by newlines) that contain any of the ``keep`` strings, in order,
    each once. Each string is searched for through the whole text (a kernel config is 6,000 lines and
    a few strings are asked for; testing every line in Python took 6 ms); one spanning lines matches none."""
    spans = set()
    for k in keep:
        at = text.find(k) if k and "\n" not in k else -1
        while at >= 0:
            start = text.rfind("\n", 0, at) + 1
            end = text.find("\n", at)
            end = len(text) if end < 0 else end + 1
            spans.add((start, end))
            at = text.find(k, end)
    return "".join(text[start:end] for start, end in sorted(spans))


KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
         (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))
_SECRET_WORDS = {}  # type: dict


def _kind(mode):
    return next((name for test, name in KINDS if test(mode)), "not a regular file")


def _secret_words(paths):
    """What to hide of each secret file: its whole text, each value after '=' or ':', each long word."""
    words = set()
    for path in paths:
        if path not in _SECRET_WORDS:
            found = set()
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                try:
                    if stat.S_ISREG(os.fstat(fd).st_mode):
                        text = os.read(fd, 65536).decode("utf-8", "replace")
                        found.add(text.strip())
                        for line in text.splitlines():
                            for sep in "=:":
                                if sep in line:
                                    found.add(line.split(sep, 1)[1].strip().strip("'\""))
                            found.update(w for w in line.split() if len(w) >= 16)
                finally:
                    os.close(fd)
            except OSError:
                pass
            _SECRET_WORDS[path] = set(w for w in found if len(w) >= 6)
        words.update(_SECRET_WORDS[path])
    return sorted(words, key=len, reverse=True)


def op_node_file(spec):
    """A file provision manages, as it is on the node: never read through a symlink, never a FIFO or a
    device (opening one could block); the text of each file in ``secrets`` replaced by <redacted>."""
    path = spec["path"]
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {"path": path, "missing": True}
    if stat.S_ISLNK(st.st_mode):
        return {"path": path, "symlink": os.readlink(path)}
    if not stat.S_ISREG(st.st_mode):
        return {"path": path, "kind": _kind(st.st_mode)}
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped since the lstat
            return {"path": path, "kind": _kind(st.st_mode)}
        chunks, size = [], 0
        while size < MAX_READ:
            chunk = os.read(fd, MAX_READ - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    text = b"".join(chunks).decode("utf-8", "replace")
    for word in _secret_words(spec.get("secrets", ())):
        text = text.replace(word, "<redacted>")
    return {"path": path, "text": text, "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
            "truncated": size >= MAX_READ}


def op_read_first(spec):
    release = os.uname().release
    tried = []
    for path in spec["paths"]:
        path = path.replace("{release}", release)
        try:
            return op_read(dict(spec, path=path))
        except OSError as exc:
            tried.append("%s (%s)" % (path, _err(exc)["error"]))
    return {"error": "none readable: " + "; ".join(tried)}


def op_stat(spec):
    st = os.stat(spec["path"])
    kind = "char" if stat.S_ISCHR(st.st_mode) else "block" if stat.S_ISBLK(st.st_mode) else \
        "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
    return {"path": spec["path"], "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid, "kind": kind}


def op_listdir(spec):
    return {"path": spec["path"], "names": sorted(os.listdir(spec["path"]))}


CAPS_DIR = "/var/cache/libvirt/qemu/capabilities"
_CAPS_HEADERS = {}  # type: dict


def _caps_headers(folder):
    """The head of each file of libvirt's QEMU capabilities cache: the emulator, its ctime and version,
    and the ctime and version of the libvirt daemon that wrote it (read once per probe run)."""
    if folder not in _CAPS_HEADERS:
        heads = []
        tags = ("emulator", "qemuctime", "selfctime", "selfvers", "version")
        for name in sorted(os.listdir(folder)):
            if name.endswith(".xml"):
                head = {"path": os.path.join(folder, name)}
                with open(head["path"]) as fh:
                    for line in fh:
                        line = line.strip()  # e.g. <qemuctime>1796399658</qemuctime>
                        tag = line[1:line.find(">")] if line.startswith("<") else ""
                        if tag in tags and line.endswith("</%s>" % tag):
                            head[tag] = line[len(tag) + 2:-len(tag) - 3]
                        if "version" in head or line.startswith("<cpu "):
                            break
                heads.append(head)
        _CAPS_HEADERS[folder] = heads
    return _CAPS_HEADERS[folder]


def _dotted(number):
    number = int(number)
    return "%d.%d.%d" % (number // 1000000, number // 1000 % 1000, number % 1000)


def cached_version(program, kind, folder=CAPS_DIR):
    """``program``'s version as libvirt's QEMU capabilities cache records it, where libvirt itself would
    still trust that record: ``qemu``, the emulator's <version> while <qemuctime> is its ctime; ``libvirt``,
    the daemon's <selfvers> while <selfctime> is its ctime. None otherwise (no cache, unreadable, stale):
    then the program is run. Saves starting QEMU and libvirtd only to print their versions."""
    try:
        ctime = str(int(os.stat(program).st_ctime))
        for head in _caps_headers(folder):
            if kind == "qemu" and head.get("emulator") == program and head.get("qemuctime") == ctime:
                return {"program": program, "rc": 0, "version": _dotted(head["version"]), "cache": head["path"]}
            if kind == "libvirt" and head.get("selfctime") == ctime and "selfvers" in head:
                return {"program": program, "rc": 0, "version": _dotted(head["selfvers"]), "cache": head["path"]}
    except (OSError, ValueError, KeyError):
        pass
    return None


def start_run(spec):
    """Start argv (``argv0`` lists alternative programs, the first found runs); finish with finish_run.
    With ``unless_glob``, nothing runs when one of those patterns matches a file (the files tell already).
    With ``version_cache`` (``qemu`` or ``libvirt``) and ``--version`` asked, the version is taken from
    libvirt's capabilities cache where it is still valid (:func:`cached_version`) and nothing runs."""
    if spec.get("unless_glob"):
        import glob

        hit = next((m for pattern in spec["unless_glob"] for m in glob.glob(pattern)), None)
        if hit:
            return {"skipped": "not run: %s exists" % hit}
    machine = os.uname().machine
    argv = [a.replace("{machine}", machine) for a in spec["argv"]]
    candidates = [c.replace("{machine}", machine) for c in spec.get("argv0", [argv[0]])]
    program = next(filter(None, map(_which, candidates)), None)  # the first found, looked up once
    if program is None:
        return {"error": "ENOENT: not found: " + ", ".join(candidates)}
    if spec.get("version_cache"):
        cached = cached_version(program, spec["version_cache"])
        if cached:
            return cached
    import subprocess

    try:
        return subprocess.Popen([program] + argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        return _err(exc)


def finish_run(proc, spec):
    if isinstance(proc, dict):
        return proc
    import subprocess

    try:
        out, err = proc.communicate(timeout=spec.get("timeout", 10))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"error": "timed out after %ss" % spec.get("timeout", 10)}
    return {"program": proc.args[0], "rc": proc.returncode, "stdout": out.decode("utf-8", "replace")[:MAX_READ],
            "stderr": err.decode("utf-8", "replace")[:65536]}


def _which(name):
    if "/" in name:
        return name if os.access(name, os.X_OK) else None
    dirs = os.environ.get("PATH", "").split(os.pathsep) + ["/usr/sbin", "/sbin", "/usr/libexec"]
    for d in dirs:
        path = os.path.join(d, name)
        if d and os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
    return None


def op_processes(spec):
    """Names (comm) of running processes but the probe's own children (the commands it runs meanwhile,
    ``libvirtd --version`` among them, are no running daemon); a zombie (dead, not yet reaped) does not run."""
    names = set()
    own = str(os.getpid())
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/stat" % pid) as fh:
                    stat_line = fh.read()
            except OSError:
                continue
            # "pid (comm) state ...": comm may hold spaces and parentheses, the state follows the last ')'
            comm = stat_line[stat_line.index("(") + 1:stat_line.rindex(")")]
            fields = stat_line[stat_line.rindex(")") + 2:].split()
            # a zombie (dead, not yet reaped) does not run; nor is the probe's own ``libvirtd --version`` the daemon
            if fields[0] not in ("Z", "X") and fields[1] != own:
                names.add(comm)
    return {"names": sorted(names)}


def op_installed(spec):
    """Where each program is (PATH, then the sbin folders), and what each glob pattern matches."""
    import glob

    return {"programs": dict((name, _which(name)) for name in spec.get("programs", [])),
            "globs": dict((pattern, sorted(glob.glob(pattern))) for pattern in spec.get("globs", []))}


def op_exists(spec):
    return {"path": spec["path"], "exists": os.path.exists(spec["path"])}


def op_statvfs(spec):
    path = spec["path"]
    while not os.path.exists(path) and path not in ("/", ""):
        path = os.path.dirname(path)  # the filesystem the path will live on
    st = os.statvfs(path)
    return {"path": path, "free": st.f_bavail * st.f_frsize, "total": st.f_blocks * st.f_frsize}


def op_ioctl(spec):
    import fcntl
    fd = os.open(spec["path"], os.O_RDWR | os.O_CLOEXEC)
    results = []
    try:
        for request, arg, close_result in spec["calls"]:
            try:
                ret = fcntl.ioctl(fd, request, arg)
            except OSError as exc:
                results.append(_err(exc))
                break
            results.append({"ret": ret})
            if close_result and ret >= 0:
                os.close(ret)  # e.g. the VM fd KVM_CREATE_VM returns
    finally:
        os.close(fd)
    return {"path": spec["path"], "results": results}


def op_qemu_cpu_models(spec):
    """The CPU models libvirt's QEMU capabilities cache lists for the node's own architecture, per
    accelerator: {"kvm": {model: [blockers]}, "tcg": {...}} (no blockers: usable). Parsed here, so only
    the names travel."""
    import re

    folder = spec.get("path", CAPS_DIR)
    arch = os.uname().machine
    cpu = re.compile(r"<cpu type='(\w+)' name='([^']+)'[^>]*usable='(\w+)'")
    blocker = re.compile(r"<blocker name='([^']+)'")
    host_cpu = re.compile(r"<hostCPU type='(\w+)'")
    enabled = re.compile(r"<property name='([^']+)' type='boolean' value='true'")
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".xml"):
            continue
        models, current, own = {}, None, False  # type: dict, Any, bool
        hosts, host = {}, None  # type: dict, Any  # the host-model CPU per accelerator: its boolean features on
        with open(os.path.join(folder, name)) as fh:
            for line in fh:
                if "<arch>" in line:
                    own = line.strip() == "<arch>%s</arch>" % arch
                h = host_cpu.search(line)
                if h:
                    host = hosts.setdefault(h.group(1), [])
                    continue
                if "</hostCPU>" in line:
                    host = None
                    continue
                if host is not None:
                    e = enabled.search(line)
                    if e:
                        host.append(e.group(1))
                    continue
                m = cpu.search(line)
                if m:
                    current = models.setdefault(m.group(1), {}).setdefault(m.group(2), [])
                    if m.group(3) == "yes":
                        current = None
                    continue
                b = blocker.search(line) if current is not None else None
                if b:
                    current.append(b.group(1))
        if own:
            return {"path": os.path.join(folder, name), "models": models, "host_model": hosts}
    return {"error": "no QEMU capabilities for %s in %s (libvirtd writes them when it starts)" % (arch, folder)}


KVM_RUN_CODE = bytes([0xBA, 0xF8, 0x03, 0xB0, 0x42, 0xEE, 0xF4])  # mov dx,0x3f8; mov al,0x42; out dx,al; hlt


def op_kvm_run(spec):
    """Run a vCPU: a VM with one page holding KVM_RUN_CODE (real mode at 0x1000), each KVM_RUN bounded
    by an interval timer; returns the exits seen (kind, and for I/O the port and byte). x86_64 only.
    Every descriptor and mapping is closed in every case."""
    import fcntl
    import mmap
    import signal
    import struct
    import time

    if os.uname().machine != "x86_64":
        return {"skipped": "the vCPU test is written for x86_64"}
    limit = float(spec.get("timeout", 0.5))

    class Late(Exception):
        pass

    def late(signum, frame):
        raise Late()

    started = time.time()
    opened, maps, exits = [], [], []
    old = signal.signal(signal.SIGALRM, late)
    try:
        kvm = os.open(spec.get("path", "/dev/kvm"), os.O_RDWR | os.O_CLOEXEC)
        opened.append(kvm)
        vm = fcntl.ioctl(kvm, 0xAE01, 0)  # KVM_CREATE_VM
        opened.append(vm)
        memory = mmap.mmap(-1, 0x1000)
        maps.append(memory)
        memory[0:len(KVM_RUN_CODE)] = KVM_RUN_CODE
        import ctypes
        address = ctypes.addressof(ctypes.c_char.from_buffer(memory))
        fcntl.ioctl(vm, 0x4020AE46, struct.pack("IIQQQ", 0, 0, 0x1000, 0x1000, address))  # SET_USER_MEMORY_REGION
        vcpu = fcntl.ioctl(vm, 0xAE41, 0)  # KVM_CREATE_VCPU
        opened.append(vcpu)
        size = fcntl.ioctl(kvm, 0xAE04, 0)  # KVM_GET_VCPU_MMAP_SIZE
        run = mmap.mmap(vcpu, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        maps.append(run)
        sregs = bytearray(fcntl.ioctl(vcpu, 0x8138AE83, bytes(312)))  # KVM_GET_SREGS
        struct.pack_into("QIH", sregs, 0, 0, 0xFFFF, 0)  # cs: base 0, selector 0
        fcntl.ioctl(vcpu, 0x4138AE84, bytes(sregs))  # KVM_SET_SREGS
        regs = bytearray(144)
        struct.pack_into("QQ", regs, 16 * 8, 0x1000, 0x2)  # rip, rflags
        fcntl.ioctl(vcpu, 0x4090AE82, bytes(regs))  # KVM_SET_REGS
        for _ in range(4):
            signal.setitimer(signal.ITIMER_REAL, limit)
            try:
                fcntl.ioctl(vcpu, 0xAE80, 0)  # KVM_RUN
            except Late:
                exits.append({"kind": "timeout"})
                break
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            reason = struct.unpack_from("I", run, 8)[0]
            if reason == 2:  # KVM_EXIT_IO
                direction, width, port, count, offset = struct.unpack_from("BBHIQ", run, 32)
                exits.append({"kind": "io", "port": port, "out": direction == 1, "byte": run[offset]})
            elif reason == 5:  # KVM_EXIT_HLT
                exits.append({"kind": "hlt"})
                break
            else:
                exits.append({"kind": "exit %d" % reason})
                break
        return {"exits": exits, "ms": round((time.time() - started) * 1000, 2)}
    except OSError as exc:
        return dict(_err(exc), exits=exits)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        for m in reversed(maps):
            m.close()
        for fd in reversed(opened):
            os.close(fd)


def _kvm_usable(path):
    """True, or why QEMU could not use ``path`` as KVM (absent, not read-write, no KVM API)."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return "%s cannot be opened read-write: %s" % (path, _err(exc)["error"])
    try:
        version = fcntl.ioctl(fd, 0xAE00, 0)  # KVM_GET_API_VERSION
    except OSError as exc:
        return "%s does not answer the KVM API: %s" % (path, _err(exc)["error"])
    finally:
        os.close(fd)
    return True if version == 12 else "%s answers KVM API version %d, not 12" % (path, version)


def _boot(qemu, accel, timeout, spec):
    """One boot of the canary under ``accel``: ok when the marker appears on the serial console
    within ``timeout`` seconds. QEMU is killed in every case."""
    import select
    import subprocess
    import time

    argv = [qemu, "-accel", accel, "-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
            "-serial", "stdio", "-m", str(spec.get("memory_mb", 256)), "-smp", "1", "-no-reboot",
            "-kernel", spec["kernel"], "-initrd", spec["initrd"], "-append", spec["cmdline"]]
    marker = spec["marker"].encode()
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout  # type: Any
    seen, why = b"", None
    try:
        while True:
            left = started + timeout - time.monotonic()
            if left <= 0:
                why = "no marker on the console within %gs" % timeout
                break
            ready, _, _ = select.select([out], [], [], min(left, 0.5))
            if not ready:
                continue
            chunk = os.read(out.fileno(), 65536)
            if not chunk:
                proc.wait()
                why = "QEMU exited with %s before the marker" % proc.returncode
                break
            seen = (seen + chunk)[-65536:]
            if marker in seen:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        out.close()
    seconds = round(time.monotonic() - started, 2)
    lines = [ln.strip() for ln in seen.decode("utf-8", "replace").splitlines() if ln.strip()]
    if why is None:
        return {"accel": accel, "ok": True, "seconds": seconds,
                "console": next(ln for ln in lines if spec["marker"] in ln)[:300]}
    return {"accel": accel, "ok": False, "seconds": seconds, "why": why, "console": [ln[:300] for ln in lines[-3:]]}


def op_canary_boot(spec):
    """Boot the canary guest (its kernel and initramfs already on the node) with QEMU itself, under
    each ``accels`` entry ``[accel, timeout]`` in turn until one boot shows ``marker``: KVM first, then
    TCG tells whether the node runs guests at all. KVM is not tried where /dev/kvm is unusable."""
    if spec.get("unavailable"):
        return {"skipped": spec["unavailable"]}
    machine = os.uname().machine
    qemu = _which("qemu-system-" + machine)
    if qemu is None:
        return {"error": "ENOENT: qemu-system-%s is not installed" % machine}
    for path in (spec["kernel"], spec["initrd"]):
        os.stat(path)
    runs = []
    for accel, timeout in spec["accels"]:
        if accel == "kvm":
            usable = _kvm_usable(spec.get("device", "/dev/kvm"))
            if usable is not True:
                runs.append({"accel": "kvm", "skipped": usable})
                continue
        run = _boot(qemu, accel, float(timeout), spec)
        runs.append(run)
        if run["ok"]:
            break
    return {"qemu": qemu, "runs": runs}


def _link_name(folder, name):
    """The name a sysfs link points to (``driver`` -> ``vfio-pci``), or the recorded ``NAME.name`` file
    of a copied tree, or None."""
    try:
        return os.path.basename(os.readlink(os.path.join(folder, name)))
    except OSError:
        pass
    try:
        with open(os.path.join(folder, name + ".name")) as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def op_pci_devices(spec):
    """Every PCI device under ``path`` (/sys/bus/pci/devices): ids, class, the driver bound, its IOMMU
    group, SR-IOV totals, and the physical function of a virtual function."""
    root = spec.get("path", "/sys/bus/pci/devices")
    devices = []
    for address in sorted(os.listdir(root)):
        folder = os.path.join(root, address)
        device = {"address": address}
        for name in ("vendor", "device", "class", "sriov_totalvfs", "sriov_numvfs", "numa_node"):
            try:
                with open(os.path.join(folder, name)) as fh:
                    device[name] = fh.read().strip()
            except OSError:
                pass
        for name in ("driver", "iommu_group", "physfn"):
            value = _link_name(folder, name)
            if value is not None:
                device[name] = value
        devices.append(device)
    return {"path": root, "devices": devices}


def op_adjtimex(spec):
    import ctypes

    class _Timex(ctypes.Structure):
        _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                    ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                    ("rest", ctypes.c_char * 256)]

    libc = ctypes.CDLL(None, use_errno=True)  # the interpreter's own symbols, libc's among them (find_library runs ldconfig)
    tx = _Timex()  # modes = 0: read only
    state = libc.adjtimex(ctypes.byref(tx))
    if state < 0:
        return {"error": os.strerror(ctypes.get_errno())}
    return {"state": state, "status": tx.status, "maxerror_us": tx.maxerror}


def op_listening(spec):
    """TCP ports in LISTEN state, IPv4 and IPv6: asked of the kernel by sock_diag netlink (man 7
    sock_diag), which walks only the listening sockets; else read from /proc/net/tcp{,6}, which walks
    every bucket of the socket table (8 ms here with two sockets open)."""
    import socket

    try:
        ports = set()  # type: set
        for family in (socket.AF_INET, socket.AF_INET6):
            ports.update(_listening_by_netlink(family))
        return {"ports": sorted(ports), "source": "sock_diag"}
    except OSError:  # a kernel without sock_diag, or netlink refused: the files say the same, slower
        return {"ports": sorted(_listening_from_proc()), "source": "/proc/net/tcp"}


def _listening_from_proc():
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as fh:
                next(fh)
                for line in fh:
                    fields = line.split()
                    if fields[3] == "0A":  # hex local address, state 0A (LISTEN)
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            continue
    return ports


def _listening_by_netlink(family):
    """The local ports of ``family``'s TCP sockets in LISTEN, by one SOCK_DIAG_BY_FAMILY dump."""
    import socket
    import struct

    netlink_sock_diag, sock_diag_by_family, nlmsg_error, nlmsg_done = 4, 20, 2, 3
    request_dump = 0x301  # NLM_F_REQUEST | NLM_F_DUMP
    tcp_listen = 10
    # struct inet_diag_req_v2 (family, protocol, ext, pad, states) and a zeroed inet_diag_sockid (48 bytes)
    request = struct.pack("=BBBxI", family, socket.IPPROTO_TCP, 0, 1 << tcp_listen) + bytes(48)
    header = struct.pack("=IHHII", 16 + len(request), sock_diag_by_family, request_dump, 1, 0)
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, netlink_sock_diag)
    try:
        sock.settimeout(2)
        sock.sendto(header + request, (0, 0))
        ports = set()  # type: set
        while True:
            data = sock.recv(65536)
            if not data:
                raise OSError(errno.EIO, "sock_diag: empty answer")
            offset = 0
            while offset + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if kind == nlmsg_done:
                    return ports
                if kind == nlmsg_error:
                    code = -struct.unpack_from("=i", data, offset + 16)[0]
                    raise OSError(code, "sock_diag: %s" % os.strerror(code))
                if length < 16:
                    raise OSError(errno.EIO, "sock_diag: malformed message")
                # struct inet_diag_msg: family, state, timer, retrans, then the sockid's sport (big-endian)
                ports.add(struct.unpack_from(">H", data, offset + 20)[0])
                offset += (length + 3) & ~3
    finally:
        sock.close()


OPS = {name[3:]: fn for name, fn in globals().items() if name.startswith("op_")}


def main(spec):
    u = os.uname()
    facts = {"_probe": {"uid": os.geteuid(), "python": sys.version.split()[0],
                        "machine": u.machine, "release": u.release, "nodename": u.nodename}}
    # commands first, so they run while the files are read
    running = {}
    for key, op in spec.items():
        if op.get("op") == "run":
            try:
                running[key] = start_run(op)
            except Exception as exc:  # a bad operation loses its own fact, never the node's others
                facts[key] = _err(exc)
    for key, op in spec.items():
        if op.get("op") == "run":
            continue
        fn = OPS.get(op.get("op"))
        try:
            facts[key] = fn(op) if fn else {"error": "unknown probe op %r" % op.get("op")}
        except (OSError, ValueError, KeyError, StopIteration, IndexError) as exc:
            facts[key] = _err(exc)
        except Exception as exc:  # a plugin's operation with a bad argument: its fact says so
            facts[key] = {"error": "the probe operation failed: %s: %s" % (type(exc).__name__, exc)}
    for key, proc in running.items():
        try:
            facts[key] = finish_run(proc, spec[key])
        except Exception as exc:
            facts[key] = {"error": "the probe operation failed: %s: %s" % (type(exc).__name__, exc)}
    sys.stdout.write(_as_json(facts))


def _as_json(facts):
    """The facts as one JSON object; an answer JSON cannot hold becomes that fact's error, never the
    loss of the others."""
    import json

    try:
        return json.dumps(facts)
    except (TypeError, ValueError):
        for key, answer in facts.items():
            try:
                json.dumps(answer)
            except (TypeError, ValueError) as exc:
                facts[key] = {"error": "the probe operation's answer is not JSON: %s" % exc}
        return json.dumps(facts)

