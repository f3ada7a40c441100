"""Remedies on a node (stdlib only, Python 3.6+), sent alone in one bundle (provision.node.bundle): read
what the remedies need (the package manager, the installed packages, the loaded modules, the devices,
the running daemons), plan (pure: :func:`plan`, from that read state), and unless --check carry the plan
out: install the missing packages with the node's own package manager, load modules, set device nodes'
group and mode, start or restart daemons. Prints one JSON object: ``{"steps": [...], "error": ...}``.

The spec: ``{"check": bool, "timeout": seconds to wait for the package manager's lock, "packages":
{family: [name]}, "modules": [name], "devices": [[path, group, mode]], "services": [{name, start, ready,
restart_on_install}]}``. A package install is not rolled back; the rest is idempotent.
"""
import grp
import json
import os
import signal
import stat
import subprocess
import sys
import time

from .common import run, which

MANAGERS = (("debian", "apt-get"), ("redhat", "dnf"))  # family, the program that installs its packages
PATHS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def _os_release():
    try:
        with open("/etc/os-release") as fh:
            fields = dict(line.rstrip("\n").split("=", 1) for line in fh if "=" in line)
    except OSError:
        return "no /etc/os-release"
    return " ".join("%s=%s" % (k, fields[k].strip('"')) for k in ("ID", "VERSION_ID", "ID_LIKE") if k in fields)


def _installed(family, names):
    """The names of ``names`` that are installed."""
    if not names:
        return []
    if family == "debian":
        _, out, _ = run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\\n"] + list(names))
        return [line.split()[0] for line in out.splitlines() if len(line.split()) > 1 and line.split()[1] == "ii"]
    return [n for n in names if run(["rpm", "-q", "--quiet", n])[0] == 0]


def _loaded_modules():
    names = set()  # type: set
    try:
        with open("/proc/modules") as fh:
            names.update(line.split()[0] for line in fh if line.strip())
    except FileNotFoundError:  # a kernel without loadable modules
        pass
    try:  # built in, or loaded: /sys/module has both
        names.update(os.listdir("/sys/module"))
    except FileNotFoundError:  # no sysfs mounted
        pass
    return sorted(names)


def _device(path):
    try:
        st = os.stat(path)
    except OSError as exc:
        return {"error": exc.strerror}
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return {"group": group, "mode": "%04o" % stat.S_IMODE(st.st_mode), "char": stat.S_ISCHR(st.st_mode)}


def _running(names):
    """The names of ``names`` that a process runs as (its /proc/PID/comm)."""
    found = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/comm" % pid) as fh:
                    comm = fh.read().strip()
            except OSError:
                continue
            if comm in names:
                found.add(comm)
    return sorted(found)


def read_state(spec):
    """What the plan is decided from; read only."""
    family, manager = None, None
    for fam, program in MANAGERS:
        if which(program, PATHS):
            family, manager = fam, program
            break
    wanted = (spec.get("packages") or {}).get(family, []) if family else []
    return {
        "family": family, "manager": manager, "os": _os_release(),
        "installed": _installed(family, wanted),
        "modules": _loaded_modules() if spec.get("modules") else [],
        "devices": dict((d[0], _device(d[0])) for d in spec.get("devices", [])),
        "groups": [g.gr_name for g in grp.getgrall()],
        "running": _running([s["name"] for s in spec.get("services", [])]),
        "systemd": os.path.isdir("/run/systemd/system"),
    }


def plan(spec, state):
    """The steps, pure: ``{kind, target, action, why}`` each; ``action`` is ``install``, ``load``,
    ``update``, ``start``, ``restart``, ``unchanged`` or ``failed`` (refused before any change)."""
    steps = []
    packages = spec.get("packages") or {}
    if any(packages.values()):
        family = state["family"]
        if family is None:
            steps.append({"kind": "package", "target": "package manager", "action": "failed",
                          "why": "the node has neither apt-get nor dnf (%s); install the packages with its own "
                                 "package manager: %s" % (state["os"], "; ".join(
                                     "%s: %s" % (f, " ".join(n)) for f, n in sorted(packages.items())))})
        elif not packages.get(family):
            steps.append({"kind": "package", "target": "package manager", "action": "failed",
                          "why": "no plugin names packages for %s nodes (%s)" % (family, state["os"])})
        else:
            for name in packages[family]:
                if name in state["installed"]:
                    steps.append({"kind": "package", "target": name, "action": "unchanged", "why": ""})
                else:
                    steps.append({"kind": "package", "target": name, "action": "install",
                                  "why": "not installed (%s; an install is not rolled back)" % state["manager"]})
    installing = any(s["action"] == "install" for s in steps)
    for name in spec.get("modules", []):
        loaded = name in state["modules"]
        steps.append({"kind": "module", "target": name, "action": "unchanged" if loaded else "load",
                      "why": "" if loaded else "not loaded"})
    for path, group, mode in spec.get("devices", []):
        now = state["devices"].get(path) or {"error": "not read"}
        if "error" in now and any(s["kind"] == "module" and s["action"] == "load" for s in steps):
            steps.append({"kind": "device", "target": path, "action": "update",
                          "why": "made when the modules load; then group %s mode %s" % (group, mode)})
        elif "error" in now:
            steps.append({"kind": "device", "target": path, "action": "failed",
                          "why": "%s: %s (the kernel module that makes it is not loaded)" % (path, now["error"])})
        elif now["group"] == group and int(now["mode"], 8) == int(mode, 8):
            steps.append({"kind": "device", "target": path, "action": "unchanged", "why": ""})
        else:
            steps.append({"kind": "device", "target": path, "action": "update",
                          "why": "group %s mode %s, wanted group %s mode %s%s" % (
                              now["group"], now["mode"], group, mode,
                              "" if group in state["groups"] else " (a system group %s is made)" % group)})
    for service in spec.get("services", []):
        running = service["name"] in state["running"]
        if not running:
            how = "systemctl enable --now" if state["systemd"] else "started directly: systemd is not PID 1"
            steps.append({"kind": "service", "target": service["name"], "action": "start",
                          "why": "not running (%s)" % how})
        elif installing and service.get("restart_on_install", True):
            steps.append({"kind": "service", "target": service["name"], "action": "restart",
                          "why": "packages are installed: it loads its drivers only when it starts"})
        else:
            steps.append({"kind": "service", "target": service["name"], "action": "unchanged", "why": ""})
    return steps


class Failed(Exception):
    pass


def _tail(text, lines=4):
    """The lines that say why: apt's own E: and W: lines, else the last ones; and who held the lock that
    apt waited for (apt says so only while it waits)."""
    said = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in said if ln.startswith(("E:", "W:", "Error:", "dpkg: error"))]
    waited = [ln.split(":", 1)[1].strip().rstrip(".") for ln in said if ln.startswith("Waiting for cache lock:")]
    return "; ".join((errors or said)[-lines:] + waited[-1:]) or "no message"


def _install(state, names, lock_timeout):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C.UTF-8", PATH=":".join(PATHS))
    if state["family"] == "debian":
        lock = ["-o", "DPkg::Lock::Timeout=%d" % max(1, int(lock_timeout))]
        rc, out, err = run(["apt-get", "-q"] + lock + ["--error-on=any", "update"], env=env)
        if rc:
            raise Failed("apt-get update failed (exit %d): the node's package sources cannot be read: %s"
                         % (rc, _tail(err + "\n" + out)))
        journal = os.path.isdir("/var/lib/dpkg/updates") and os.listdir("/var/lib/dpkg/updates")
        if journal or run(["dpkg", "--audit"], env=env)[1].strip():  # dpkg's journal, or half-done packages
            # an install was interrupted: dpkg finishes what it can first (apt-get refuses until then); what
            # it cannot (a package whose dependencies were never unpacked) apt-get --fix-broken completes,
            # given no package (apt asks for that when dependencies are unmet)
            run(["dpkg", "--force-confold", "--configure", "-a"], env=env)
            rc, out, err = run(["apt-get", "-q", "-y", "--no-install-recommends", "--fix-broken"] + lock + [
                "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold", "install"], env=env)
            if rc:
                raise Failed("apt-get --fix-broken install, to finish an interrupted install, failed (exit %d): %s"
                             % (rc, _tail(err + "\n" + out)))
        argv = ["apt-get", "-q", "-y", "--no-install-recommends", "--fix-broken"] + lock + [
            "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold", "install"] + names
    else:
        argv = ["dnf", "-y", "-q", "--setopt=install_weak_deps=False", "install"] + names
    rc, out, err = run(argv, env=env)
    if rc:
        raise Failed("%s install failed (exit %d): %s" % (state["manager"], rc, _tail(err + "\n" + out)))


def _set_device(path, group, mode):
    if not os.path.exists(path):
        raise Failed("%s did not appear when the modules loaded" % path)
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        rc, _, err = run(["groupadd", "--system", group])
        if rc:
            raise Failed("groupadd --system %s failed: %s" % (group, _tail(err))) from None
        gid = grp.getgrnam(group).gr_gid
    os.chown(path, -1, gid)
    os.chmod(path, int(mode, 8))


def _pids(name):
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/comm" % pid) as fh:
                    if fh.read().strip() == name:
                        pids.append(int(pid))
            except OSError:
                continue
    return pids


def _wait(check, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def _service(service, action, systemd):
    name = service["name"]
    if systemd:
        argv = ["systemctl", "restart", name] if action == "restart" else ["systemctl", "enable", "--now", name]
        rc, _, err = run(argv, timeout=120)
        if rc:
            raise Failed("%s failed: %s" % (" ".join(argv), _tail(err)))
    else:
        if action == "restart":
            for pid in _pids(name):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:  # it ended meanwhile
                    pass
            if not _wait(lambda: not _pids(name), 20):
                raise Failed("%s did not stop within 20 s of SIGTERM" % name)
        if service.get("ready") and os.path.exists(service["ready"]):
            os.unlink(service["ready"])  # a socket left by a daemon that is gone
        try:  # a daemon: it forks, and keeps none of this session's files open
            proc = subprocess.Popen(service["start"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, start_new_session=True, close_fds=True)
            _, err = proc.communicate(timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Failed("%s: %s" % (" ".join(service["start"]), exc)) from None
        if proc.returncode:
            raise Failed("%s exited %d: %s" % (" ".join(service["start"]), proc.returncode,
                                               _tail(err.decode("utf-8", "replace"))))
    if not _wait(lambda: bool(_pids(name)) and (not service.get("ready") or os.path.exists(service["ready"])), 20):
        raise Failed("%s was started but %s within 20 s" % (
            name, "does not run" if not _pids(name) else "%s did not appear" % service["ready"]))


def carry_out(spec, state, steps):
    """Make the changes, in order: packages, modules, devices, services. The first failure stops the rest
    (marked ``not done``); it is the step's ``why``."""
    install = [s for s in steps if s["kind"] == "package" and s["action"] == "install"]
    running = None
    try:
        if install:
            started = time.time()
            _install(state, [s["target"] for s in install], spec.get("timeout", 120))
            for s in install:
                s["seconds"] = round(time.time() - started, 3)
        for step in steps:
            if step["kind"] == "package" or step["action"] in ("unchanged", "failed"):
                continue
            started, running = time.time(), step
            if step["kind"] == "module":
                rc, _, err = run(["modprobe", step["target"]])
                if rc:
                    raise Failed("modprobe %s failed: %s" % (step["target"], _tail(err)))
            elif step["kind"] == "device":
                device = [d for d in spec["devices"] if d[0] == step["target"]][0]
                _set_device(*device)
            elif step["kind"] == "service":
                service = [s for s in spec["services"] if s["name"] == step["target"]][0]
                _service(service, step["action"], state["systemd"])
            step["seconds"] = round(time.time() - started, 3)
            running = None
    except Failed as exc:
        failed = install if install and not install[0].get("seconds") else [running]
        for step in steps:
            if step in failed:
                step["action"], step["why"] = "failed", str(exc)
            elif step["action"] not in ("unchanged", "failed") and "seconds" not in step:
                step["action"], step["why"] = "not done", "an earlier remedy failed"
        return str(exc)
    return ""


def main(spec):
    state = read_state(spec)
    steps = plan(spec, state)
    refused = [s for s in steps if s["action"] == "failed"]
    error = "; ".join("%s: %s" % (s["target"], s["why"]) for s in refused)
    if not refused and not spec.get("check"):
        error = carry_out(spec, state, steps)
    sys.stdout.write(json.dumps({"steps": steps, "error": error, "refused": bool(refused)}))
