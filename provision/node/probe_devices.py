"""The probe's questions to devices and the kernel: ioctls, a few real-mode instructions under KVM, the
canary's boot, PCI devices, the clock, listening ports (by netlink)."""
import errno
import os

from .common import error_of, which

TYPE_CHECKING_NODE = False  # mypy takes it as true (pyproject's always_true): the node imports no typing
if TYPE_CHECKING_NODE:
    from typing import Any  # noqa: F401


def op_ioctl(spec):
    import fcntl
    fd = os.open(spec["path"], os.O_RDWR | os.O_CLOEXEC)
    results = []
    try:
        for request, arg, close_result in spec["calls"]:
            try:
                ret = fcntl.ioctl(fd, request, arg)
            except OSError as exc:
                results.append(error_of(exc))
                break
            results.append({"ret": ret})
            if close_result and ret >= 0:
                os.close(ret)  # e.g. the VM fd KVM_CREATE_VM returns
    finally:
        os.close(fd)
    return {"path": spec["path"], "results": results}


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
        return dict(error_of(exc), exits=exits)
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
        return "%s cannot be opened read-write: %s" % (path, error_of(exc)["error"])
    try:
        version = fcntl.ioctl(fd, 0xAE00, 0)  # KVM_GET_API_VERSION
    except OSError as exc:
        return "%s does not answer the KVM API: %s" % (path, error_of(exc)["error"])
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
    qemu = which("qemu-system-" + machine)
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
            except FileNotFoundError:  # a device without SR-IOV or NUMA has no such attribute
                pass
            except OSError as exc:  # one the kernel refuses is said, not taken for absent
                device.setdefault("errors", {})[name] = exc.strerror or str(exc)
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


def op_connect(spec):
    """Whether a TCP connection from the node to ``host``:``port`` opens within ``timeout`` seconds (a
    Ceph monitor, a storage portal): ``connected``, or ``reason`` why not. Nothing is sent."""
    import socket
    import time

    start = time.time()
    try:
        with socket.create_connection((spec["host"], int(spec["port"])), timeout=spec.get("timeout", 3)):
            pass
    except socket.timeout:
        return {"connected": False, "reason": "no answer within %ss" % spec.get("timeout", 3)}
    except OSError as exc:
        return {"connected": False, "reason": exc.strerror or str(exc)}
    return {"connected": True, "seconds": round(time.time() - start, 4)}


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
