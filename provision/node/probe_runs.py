"""The probe's commands: started at once and finished last (argument vectors, no shell), and the versions
and CPU models libvirt's QEMU capabilities cache already records (so nothing needs to run for them)."""
import os

from .common import error_of, which
from .probe_files import MAX_READ

TYPE_CHECKING_NODE = False  # mypy takes it as true (pyproject's always_true): the node imports no typing
if TYPE_CHECKING_NODE:
    from typing import Any  # noqa: F401

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
    program = next(filter(None, map(which, candidates)), None)  # the first found, looked up once
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
        return error_of(exc)


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
