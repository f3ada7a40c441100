"""The apply agent: run on a node (stdlib only, Python 3.6+) to make its managed files match the rendered ones.

Sent like the probe, as ``python3 -I -S -c SOURCE`` with ``main({...})`` appended; prints one
JSON object. Under a lock (``/var/lib/provision/lock``) it reads the state record
(``/var/lib/provision/state.json``: what provision wrote, with digests), finishes the rollback of a
run that was killed midway (its journal is in the record), plans each file (create, update,
unchanged, remove) and, unless ``check``, carries the plan out: each file written atomically (a
temporary file in the target's folder, fsync, rename) with its mode, the previous version kept
under ``/var/lib/provision/backup/<run>/``. A step that fails undoes every step of this run, newest
first. It never replaces a symlink or anything but a regular file, and it removes only files it
created whose content is still what it wrote.
"""
import errno
import hashlib
import json
import os
import stat
import sys
import time

TYPE_CHECKING_NODE = False  # mypy takes it as true (pyproject's always_true): the node imports no typing
if TYPE_CHECKING_NODE:
    from typing import Any  # noqa: F401

STATE_DIR = "/var/lib/provision"


def _digest(data):
    return hashlib.sha256(data).hexdigest()


def _read_regular(path):
    """(bytes, stat) of a regular file, None when absent; ValueError for anything else."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # absent (a folder on its way may be a file: writing says so)
        return None, None
    if stat.S_ISLNK(st.st_mode):
        raise ValueError("%s is a symlink to %s; provision does not replace it" % (path, os.readlink(path)))
    if not stat.S_ISREG(st.st_mode):
        raise ValueError("%s is not a regular file; provision does not replace it" % path)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks), st


def _atomic_write(path, data, mode, uid=0, gid=0):
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        os.makedirs(folder, 0o755)
    # one name per target: a run killed between writing and renaming leaves it, and the next run (under
    # the same lock) removes it instead of leaving temporary files beside the node's configuration
    tmp = "%s/.%s.provision-tmp" % (folder, os.path.basename(path))
    try:
        if stat.S_ISREG(os.lstat(tmp).st_mode):
            os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, mode)  # whatever the umask took away
        if os.geteuid() == 0:
            os.fchown(fd, uid, gid)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.rename(tmp, path)


# the state record's layout: a record without "schema" is of the first layout (read, and rewritten with
# this number); one of a later layout comes from a newer provision, and this one refuses to read it
STATE_SCHEMA = 1


class NewerState(Exception):
    pass


def _save_state(state):
    state["schema"] = STATE_SCHEMA
    _atomic_write(STATE_DIR + "/state.json", json.dumps(state, indent=1, sort_keys=True).encode(), 0o600)


def _backup_path(run, target):
    return "%s/backup/%s%s" % (STATE_DIR, run, target)


KEEP_BACKUPS = 10  # runs whose previous versions are kept under backup/


def _prune_backups(state, keep=KEEP_BACKUPS):
    """Remove the backups of all but the newest ``keep`` runs (run ids sort by their UTC start time);
    the backup of a run whose journal is still pending is always kept."""
    import shutil

    folder = STATE_DIR + "/backup"
    pending = (state.get("pending") or {}).get("run")
    runs = sorted(name for name in os.listdir(folder) if os.path.isdir(os.path.join(folder, name))
                  and not os.path.islink(os.path.join(folder, name)))
    removed = []
    for name in runs[:-keep] if keep else runs:
        if name != pending:
            shutil.rmtree(os.path.join(folder, name))
            removed.append(name)
    return removed


def _undo(state, journal):
    """Undo a journal's file steps, newest first: restore the backup, or remove what the step created.
    ``(undone, problems, records whose undo failed)``: a failed one keeps its old state record."""
    undone, problems, kept = [], [], []  # type: list, list, list
    for step in reversed(journal["done"]):
        target = step["target"]
        try:
            if step.get("backup"):
                data, _ = _read_regular(step["backup"])
                if data is None:
                    raise OSError(errno.ENOENT, "its backup %s is missing" % step["backup"])
                _atomic_write(target, data, step["old_mode"], step.get("old_uid", 0), step.get("old_gid", 0))
            elif step["action"] == "create":
                try:
                    os.unlink(target)
                except (FileNotFoundError, NotADirectoryError):  # the write it journaled never happened
                    pass
        except OSError as exc:
            problems.append("%s: %s" % (target, exc.strerror or exc))
            kept.insert(0, step)
            continue
        if "old_state" in step:
            if step["old_state"] is None:
                state["files"].pop(target, None)
            else:
                state["files"][target] = step["old_state"]
        undone.append(target)
    return undone, problems, kept


def plan(state, files):
    """Each file's action: create, update (content or mode), unchanged; and remove for what provision
    wrote before that is no longer rendered."""
    steps, wanted = [], set()
    for f in files:
        target, data, mode = f["target"], f["content"].encode(), int(f["mode"], 8)
        wanted.add(target)
        try:
            current, st = _read_regular(target)
        except ValueError as exc:
            steps.append({"target": target, "action": "failed", "why": str(exc)})
            continue
        if current is None:
            action, why = "create", "absent"
        elif current != data:
            action, why = "update", "content differs"
        elif stat.S_IMODE(st.st_mode) != mode:
            action, why = "update", "mode %04o, wants %04o" % (stat.S_IMODE(st.st_mode), mode)
        else:
            action, why = "unchanged", ""
        steps.append({"target": target, "action": action, "why": why, "mode": mode, "digest": _digest(data)})
    for target in sorted(set(state["files"]) - wanted):
        record = state["files"][target]
        try:
            current, _ = _read_regular(target)
        except ValueError as exc:
            steps.append({"target": target, "action": "failed", "why": str(exc)})
            continue
        if current is None:
            steps.append({"target": target, "action": "remove", "why": "no longer rendered; already gone"})
        elif not record.get("created"):
            steps.append({"target": target, "action": "release",
                          "why": "no longer rendered; it was there before provision, so it stays as it is"})
        elif _digest(current) != record["digest"]:
            steps.append({"target": target, "action": "failed",
                          "why": "no longer rendered, but changed since provision wrote it: left as it is"})
        else:
            steps.append({"target": target, "action": "remove", "why": "no longer rendered"})
    return steps


CHANGES = ("create", "update", "remove", "release")


def _carry_out_files(state, steps, files, journal, run, running):
    """Each file step, journaled before it is made; ``running`` holds the step under way."""
    contents = dict((f["target"], f["content"].encode()) for f in files)
    for step in steps:
        target, action = step["target"], step["action"]
        if action not in CHANGES:
            continue
        running[:] = [step]
        started = time.time()
        record = {"target": target, "action": action, "old_state": state["files"].get(target)}
        current, st = (None, None) if action == "release" else _read_regular(target)
        if current is not None:
            backup = _backup_path(run, target)
            _atomic_write(backup, current, 0o600)
            assert st is not None  # read with the data
            record.update(backup=backup, old_mode=stat.S_IMODE(st.st_mode), old_uid=st.st_uid, old_gid=st.st_gid)
        journal["done"].append(record)
        _save_state(state)  # the journal says what to undo before the change is made
        if action in ("remove", "release"):
            if action == "remove" and current is not None:
                os.unlink(target)
            state["files"].pop(target, None)
        else:
            _atomic_write(target, contents[target], step["mode"])
            old = state["files"].get(target)
            state["files"][target] = {"digest": step["digest"], "run": run,
                                      "created": old["created"] if old else action == "create"}
        step["done"] = True
        step["seconds"] = round(time.time() - started, 4)


# -- libvirt objects, through virsh on the node (argument vectors, no shell) ---------------------------

# each kind of libvirt object, as data (provision.api.LibvirtKind): the controller sends the table with
# the spec (a plugin may add a kind); these are the built-in ones, for a spec that names none
KINDS = {  # type: dict
    "network": {"verbs": {"dump": ["net-dumpxml", "--inactive"], "define": "net-define", "start": "net-start",
                          "autostart": "net-autostart", "destroy": "net-destroy", "undefine": "net-undefine",
                          "info": "net-info", "list": "net-list"},
                "startable": True, "identity": "name", "holds_value": False, "folder_types": [], "used_by": "network"},
    "secret": {"verbs": {"dump": ["secret-dumpxml"], "define": "secret-define", "undefine": "secret-undefine",
                         "list": "secret-list"},
               "startable": False, "identity": "uuid", "holds_value": True, "folder_types": [], "used_by": ""},
    "pool": {"verbs": {"dump": ["pool-dumpxml", "--inactive"], "define": "pool-define", "start": "pool-start",
                       "autostart": "pool-autostart", "destroy": "pool-destroy", "undefine": "pool-undefine",
                       "info": "pool-info", "list": "pool-list", "build": "pool-build"},
             "startable": True, "identity": "name", "holds_value": False, "folder_types": ["dir", "fs", "netfs"],
             "used_by": "pool"},
}


def _verbs(kind):
    if kind not in KINDS:
        raise ValueError("no description of the libvirt kind %r (the plugin that described it is not loaded)" % kind)
    return KINDS[kind]["verbs"]


class VirshError(Exception):
    pass


def virsh(*args):
    import subprocess

    proc = subprocess.run(["virsh", "-q", "-c", "qemu:///system"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    if proc.returncode:
        raise VirshError((proc.stderr.strip().replace("error: ", "") or "virsh exited %d" % proc.returncode))
    return proc.stdout


def _covers(live, want):
    """Whether the live XML element holds every attribute, text and child the rendered one sets (libvirt
    adds UUIDs, MACs and defaults of its own: those are not differences)."""
    return live.tag == want.tag and _difference(live, want) is None


def _difference(live, want, path=""):
    """The first field the rendered XML sets that the live one does not have, as 'ip/dhcp/range@end is
    192.168.177.200, wants 192.168.177.99', or None."""
    here = path + want.tag
    for k, v in want.attrib.items():
        if live.get(k) != v:
            return "%s@%s is %s, wants %s" % (here, k, live.get(k), v)
    if (want.text or "").strip() and (live.text or "").strip() != want.text.strip():
        return "%s is %r, wants %r" % (here, (live.text or "").strip(), want.text.strip())
    used = set()
    for child in want:
        if not isinstance(child.tag, str):
            continue
        found = next((i for i, c in enumerate(live) if i not in used and _covers(c, child)), None)
        if found is not None:
            used.add(found)
            continue
        same_tag = [c for i, c in enumerate(live) if i not in used and c.tag == child.tag]
        if not same_tag:
            return "%s/%s is missing" % (here, child.tag)
        return _difference(same_tag[0], child, here + "/")
    return None


def _projected(live, want):
    """The live element cut down to what the rendered one sets: its attributes, text and children,
    children paired as :func:`_difference` pairs them. What libvirt adds of its own is left out, so a
    diff of the two shows only the fields provision manages."""
    import xml.etree.ElementTree as ET

    out = ET.Element(live.tag, dict((k, live.get(k)) for k in want.attrib if live.get(k) is not None))
    if (want.text or "").strip():
        out.text = live.text
    used = set()
    for child in want:
        if not isinstance(child.tag, str):
            continue
        found = next((i for i, c in enumerate(live) if i not in used and _covers(c, child)), None)
        if found is None:
            found = next((i for i, c in enumerate(live) if i not in used and c.tag == child.tag), None)
        if found is not None:
            used.add(found)
            out.append(_projected(live[found], child))
    return out


def _xml_lines(element):
    import xml.etree.ElementTree as ET

    element = _stripped(element)
    return (ET.tostring(element, encoding="unicode") + "\n").splitlines(True)


def _stripped(element, depth=0):
    """A copy without comments, with text and tails trimmed (so indentation alone differs in nothing)."""
    import xml.etree.ElementTree as ET

    out = ET.Element(element.tag, dict(element.attrib))
    out.text = (element.text or "").strip() or None
    children = [c for c in element if isinstance(c.tag, str)]
    if children:  # indented as ET.indent (3.9+) would
        out.text = "\n" + "  " * (depth + 1)
    for i, child in enumerate(children):
        copy = _stripped(child, depth + 1)
        copy.tail = "\n" + "  " * (depth + (i < len(children) - 1))
        out.append(copy)
    return out


def _object_diff(live, want, label):
    """A unified diff of the fields provision sets, live (``a/``) against rendered (``b/``)."""
    import difflib

    old = [] if live is None else _xml_lines(_projected(live, want))
    return "".join(difflib.unified_diff(old, _xml_lines(want), "/dev/null" if live is None else "a/" + label,
                                        "b/" + label))


def _target_problem(want, kind_name):
    """Why a pool's target folder cannot be used, from the node: something that is not a folder there."""
    kind = KINDS.get(kind_name) or {}
    path = want.findtext("target/path") if want.get("type") in kind.get("folder_types", ()) else None
    if not path:
        return None
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None  # pool-build or the mount makes it
    if stat.S_ISDIR(st.st_mode):
        return None
    what = "a symlink" if stat.S_ISLNK(st.st_mode) else "a file" if stat.S_ISREG(st.st_mode) else "not a folder"
    return "its target folder %s exists and is %s; provision does not replace it" % (path, what)


def _secret_uuid(obj):
    if obj.get("uuid"):
        return obj["uuid"]
    for line in virsh(_verbs(obj["kind"])["list"]).splitlines():  # by usage: "UUID  iscsi provision-san1"
        parts = line.split()
        if len(parts) >= 3 and parts[-1] == obj["usage"]:
            return parts[0]
    return None


def _ident(obj):
    return _secret_uuid(obj) if KINDS[obj["kind"]]["identity"] == "uuid" else obj["name"]


def _info(obj, ident):
    info = dict(line.split(":", 1) for line in virsh(_verbs(obj["kind"])["info"], ident).splitlines() if ":" in line)
    active = (info.get("Active") or info.get("State") or "").strip() in ("yes", "running")
    return active, info.get("Autostart", "").strip() == "yes"


def _users(kind, name, live):
    """Running guests that use a network (an interface on it) or a pool (a disk from it, by pool name
    or by a path under the pool's target folder)."""
    import xml.etree.ElementTree as ET

    used_by = KINDS[kind].get("used_by", "")
    if not used_by:
        return []
    folder = live.findtext("target/path") if used_by == "pool" else None
    users = []
    for dom in virsh("list", "--name").split():
        doc = ET.fromstring(virsh("dumpxml", dom))
        if used_by == "network":
            used = any(s.get("network") == name for s in doc.iterfind("devices/interface/source"))
        else:
            used = any(s.get("pool") == name or (folder and (s.get("file") or s.get("dev") or "").startswith(folder + "/"))
                       for s in doc.iterfind("devices/disk/source"))
        if used:
            users.append(dom)
    return users


def _value_digest(obj):
    data, _ = _read_regular(obj["value_file"])
    if data is None:
        raise ValueError("the value file %s is missing on the node" % obj["value_file"])
    return _digest(data)


def plan_objects(state, objects, force=False, diff=False):  # noqa: C901 (each object's states: ours, foreign, drifted, in use)
    """Each libvirt object's actions: define (create or update), start, autostart, set value; and
    remove for what provision defined before that is no longer rendered."""
    import xml.etree.ElementTree as ET

    owned = state.setdefault("objects", {})
    steps, wanted = [], set()
    for obj in objects:
        key = "%s:%s" % (obj["kind"], obj["label"])
        wanted.add(key)
        step = {"key": key, "kind": obj["kind"], "target": obj["label"], "object": obj, "todo": []}
        steps.append(step)
        try:
            ident = _ident(obj)
            live = None
            if ident:
                try:
                    live = ET.fromstring(virsh(*(_verbs(obj["kind"])["dump"] + [ident])))
                except VirshError:
                    live = None
            if live is not None and key not in owned:
                step["action"], step["why"] = "failed", "a %s of this name exists and provision did not define it; " \
                    "not touched" % obj["kind"]
                continue
            want = ET.fromstring(obj["xml"])
            problem = _target_problem(want, obj["kind"])
            if problem:
                step["action"], step["why"] = "failed", problem
                continue
            differs = _difference(live, want) if live is not None else None
            if diff and (live is None or differs):
                step["diff"] = _object_diff(live, want, "%s:%s" % (obj["kind"], obj["label"]))
            if live is None:
                step["todo"].append("define")
                step["action"], step["why"] = "create", "not defined"
            elif differs:
                step["todo"].append("define")
                step["action"], step["why"] = "update", "its definition differs: " + differs
            else:
                step["action"], step["why"] = "unchanged", ""
            if KINDS[obj["kind"]]["startable"]:
                active, autostart = _info(obj, ident) if live is not None else (False, False)
                if active and "define" in step["todo"]:
                    users = _users(obj["kind"], obj["name"], live)
                    if users and not force:
                        step["action"], step["why"] = "failed", (
                            "its definition differs, and running guests use it (%s): not redefined or restarted; "
                            "--force redefines it, and they keep the running configuration until it restarts"
                            % ", ".join(users))
                        continue
                    if users:
                        step["why"] += "; redefined only: running guests (%s) keep the running configuration " \
                            "until it restarts" % ", ".join(users)
                    else:
                        step["todo"].append("restart")
                        step["why"] += "; restarted (no running guest uses it)"
                if not active:
                    step["todo"].append("start")
                if not autostart:
                    step["todo"].append("autostart")
            elif KINDS[obj["kind"]]["holds_value"] and (owned.get(key) or {}).get("value_digest") != _value_digest(obj):
                step["todo"].append("set value")
            if step["action"] == "unchanged" and step["todo"]:
                step["action"], step["why"] = "update", ", ".join(step["todo"])
        except (VirshError, ValueError, OSError) as exc:
            step["action"], step["why"] = "failed", str(exc)
    for key in set(owned) - wanted:  # kinds of objects no longer rendered, as described when defined
        KINDS.setdefault(key.split(":", 1)[0], owned[key].get("kind_spec") or {})
    order = list(KINDS)
    for key in sorted(set(owned) - wanted, key=lambda k: (-order.index(k.split(":", 1)[0]) if k.split(":", 1)[0] in order
                                                        else 0, k)):  # the kinds defined last go first
        kind, label = key.split(":", 1)
        steps.append({"key": key, "kind": kind, "target": label, "object": owned[key]["object"], "todo": ["remove"],
                      "action": "remove", "why": "no longer rendered (a pool's data is kept)"})
    return steps


def _define(define, xml):
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".xml") as fh:
        fh.write(xml)
        fh.flush()
        virsh(define, fh.name)


def _keeping_uuid(xml, old_xml):
    """The rendered XML with the defined object's UUID, when it names none: libvirt redefines an object
    only under the UUID it already has."""
    import xml.etree.ElementTree as ET

    if not old_xml:
        return xml
    root = ET.fromstring(xml)
    if root.find("uuid") is not None:
        return xml
    uuid = ET.fromstring(old_xml).findtext("uuid")
    if not uuid:
        return xml
    element = ET.Element("uuid")
    element.text = uuid
    root.insert(1, element)
    return ET.tostring(root, encoding="unicode")


def _do(step, journal, state, run):  # noqa: C901 (one branch per virsh verb, journaled in order)
    obj, kind, key = step["object"], step["kind"], step["key"]
    names = _verbs(kind)
    owned = state["objects"]
    record = {"key": key, "kind": kind, "object": obj, "old_state": owned.get(key)}
    ident = _ident(obj)
    if ident:
        try:
            record["old_xml"] = virsh(*(names["dump"] + [ident]))
        except VirshError as exc:
            if not _gone(exc):  # only a missing object has no old definition to put back
                raise
    journal["objects"].append(record)
    _save_state(state)
    for todo in step["todo"]:
        if todo == "define":
            _define(names["define"], _keeping_uuid(obj["xml"], record.get("old_xml")))
            ident = _ident(obj)
            record["defined"] = ident
            _save_state(state)
        elif todo == "start":
            built = ""
            if obj.get("build") and names.get("build"):
                try:
                    virsh(names["build"], ident)
                except VirshError as exc:  # built already, most likely: starting says whether it is usable
                    built = str(exc)
            try:
                virsh(names["start"], ident)
            except VirshError as exc:
                raise VirshError("%s (building it first said: %s)" % (exc, built) if built else str(exc)) from None
            record["started"] = True
        elif todo == "restart":
            virsh(names["destroy"], ident)
            record["restarted"] = True
            virsh(names["start"], ident)
        elif todo == "autostart":
            virsh(names["autostart"], ident)
        elif todo == "set value":
            args = ["secret-set-value", ident, "--file", obj["value_file"]]
            virsh(*(args + (["--plain"] if obj.get("value_format") == "plain" else [])))
        elif todo == "remove":
            if KINDS[kind]["startable"]:
                _stop(names, ident)
            virsh(names["undefine"], ident)
    if "remove" in step["todo"]:
        owned.pop(key, None)
    else:
        entry = {"object": obj, "run": run, "kind_spec": KINDS[kind]}  # to remove it after its plugin is gone
        if KINDS[kind]["holds_value"]:
            entry["value_digest"] = _value_digest(obj)
        owned[key] = entry


# what libvirt says of an object that does not exist: the only refusal that leaves it as it was
_GONE = ("not found", "no network with matching", "no storage pool with matching", "no secret with matching")


def _gone(exc):
    return any(words in str(exc).lower() for words in _GONE)


def _stop(names, ident):
    """Stop an object; one that is not running, or no longer exists, is as wanted. Any other refusal
    (libvirtd down, a guest holding it) is raised with libvirt's message."""
    try:
        virsh(names["destroy"], ident)
    except VirshError as exc:
        if not (_gone(exc) or "not active" in str(exc).lower() or "not running" in str(exc).lower()):
            raise


def _undo_objects(state, journal):
    """Undo the libvirt steps of a journal, newest first: objects this run defined are undefined, objects
    it changed are defined as they were. Only "no such object" counts as already undone; every other
    refusal is a problem, with libvirt's message, and its record stays for the next run to retry.
    ``(undone, problems, records whose undo failed)``."""
    undone, problems, kept = [], [], []  # type: list, list, list
    for record in reversed(journal.get("objects", [])):
        kind, names, obj = record["kind"], _verbs(record["kind"]), record["object"]
        ident = record.get("defined") or _ident(obj)
        try:
            if record.get("old_xml"):
                _define(names["define"], record["old_xml"])
                if record.get("started") and KINDS[kind]["startable"]:
                    virsh(names["destroy"], ident)
                if record.get("restarted"):  # running again, with the definition as it was
                    _stop(names, ident)
                    virsh(names["start"], ident)
            elif ident:
                if KINDS[kind]["startable"]:
                    _stop(names, ident)
                try:
                    virsh(names["undefine"], ident)
                except VirshError as exc:
                    if not _gone(exc):
                        raise
        except VirshError as exc:
            problems.append("%s: %s" % (record["key"], exc))
            kept.insert(0, record)
            continue
        if record["old_state"] is None:
            state.get("objects", {}).pop(record["key"], None)
        else:
            state.setdefault("objects", {})[record["key"]] = record["old_state"]
        undone.append(record["key"])
    return undone, problems, kept


# -- node steps: a plugin's code run here (the host network through netlink), planned, applied, undone --

def _module(source, name):
    """A node step's module, from the source the plugin sent (stdlib and what the node has installed)."""
    namespace = {"__name__": "provision_step_" + name.replace("-", "_")}
    exec(compile(source, "<%s>" % name, "exec"), namespace)
    return namespace


def context():
    """What a node step knows of this run: the address the controller's SSH connection comes from."""
    connection = os.environ.get("SSH_CONNECTION", "").split()
    return {"controller": connection[0] if connection else None}


def plan_node_steps(state, node_steps):
    """Each node step's changes and refusals, as report steps of kind ``step["name"]``."""
    out = []
    owned = state.setdefault("steps", {})
    for step in node_steps:
        try:
            module = _module(step["source"], step["name"])
            answer = module["plan"](step["spec"], owned.get(step["name"], {}), context())
        except Exception as exc:
            answer = {"changes": [], "refused": [{"target": step["name"], "why": str(exc) or type(exc).__name__}]}
        for change in answer["changes"]:
            out.append(dict(change, kind=step["name"], step=step))
        for refusal in answer["refused"]:
            out.append(dict(refusal, kind=step["name"], action="failed", step=step))
        if answer.get("management"):
            step["management"] = answer["management"]
    return out


def _carry_out_node_steps(state, planned, journal, running, arm):
    """Each node step with changes: snapshot, journal, (arm the guard), then apply."""
    done = set()
    for change in planned:
        step = change["step"]
        if change["action"] not in CHANGES or step["name"] in done:
            continue
        done.add(step["name"])
        running[:] = [change]
        started = time.time()
        module = _module(step["source"], step["name"])
        saved = module["snapshot"](step["spec"])
        journal["steps"].append({"name": step["name"], "source": step["source"], "spec": step["spec"],
                                 "snapshot": saved, "old_state": state["steps"].get(step["name"]),
                                 "guarded": bool(step.get("guarded"))})
        _save_state(state)
        if step.get("guarded"):
            arm(journal)
        state["steps"][step["name"]] = module["apply"](step["spec"], state["steps"].get(step["name"], {}), context())
        _save_state(state)
        for other in planned:
            if other["step"] is step:
                other["done"] = True
                other["seconds"] = round(time.time() - started, 4)


def _undo_node_steps(state, journal):
    """Put each node step's snapshot back, newest first. ``(undone, problems, records not restored)``."""
    undone, problems, kept = [], [], []  # type: list, list, list
    for record in reversed(journal.get("steps", [])):
        try:
            module = _module(record["source"], record["name"])
            failed = ["%s: %s" % (record["name"], p) for p in module["restore"](record["snapshot"], record["spec"])]
        except Exception as exc:
            failed = ["%s: %s: %s" % (record["name"], type(exc).__name__, exc)]
        if failed:
            problems += failed
            kept.insert(0, record)
            continue
        if record["old_state"] is None:
            state.get("steps", {}).pop(record["name"], None)
        else:
            state.setdefault("steps", {})[record["name"]] = record["old_state"]
        undone.append(record["name"])
    return undone, problems, kept


def _undo_all(state, journal):
    """Undo a whole run, newest first: files, libvirt objects, then node steps (applied first). What
    could not be undone stays in the journal, with ``not_restored`` saying why: the caller keeps it
    pending, so the next run retries it. The list of what was undone."""
    KINDS.update(journal.get("kinds") or {})  # the kinds this run's objects are of (a guard knows no spec)
    files, file_problems, journal["done"] = _undo(state, journal)
    objects, object_problems, journal["objects"] = _undo_objects(state, journal)
    steps, step_problems, journal["steps"] = _undo_node_steps(state, journal)
    journal["not_restored"] = file_problems + object_problems + step_problems
    return files + objects + steps


def _settle(state, journal):
    """After an undo: the run is closed, or, where something could not be undone, left pending (its
    guard gone) for the next run to retry."""
    journal.pop("watchdog", None)
    if journal.get("not_restored"):
        state["pending"] = journal
    else:
        state.pop("pending", None)
    _save_state(state)


def _carry_out_objects(state, steps, journal, run, running):
    for step in steps:
        if step["action"] in ("create", "update", "remove"):
            running[:] = [step]
            started = time.time()
            _do(step, journal, state, run)
            step["done"] = True
            step["seconds"] = round(time.time() - started, 4)


def _apply_all(state, node_steps, objects, steps, files, run, arm):
    """Node steps (the host network), libvirt objects (networks, secrets, pools), then files, as one
    change. A failure undoes every step of the run, newest first; the journal stays in the state record
    until that is done, so a run killed even during its rollback is undone by the next one. A guarded
    step arms ``arm`` before its first change; its journal then stays until the run is confirmed."""
    journal = {"run": run, "done": [], "objects": [], "steps": [], "kinds": KINDS}
    state["pending"] = journal
    _save_state(state)
    running = []  # type: list
    before = [s for s in node_steps if s["step"].get("phase", "before_objects") == "before_objects"]
    after = [s for s in node_steps if s["step"].get("phase") == "after_files"]
    try:
        _carry_out_node_steps(state, before, journal, running, arm)
        _carry_out_objects(state, objects, journal, run, running)
        if journal.get("watchdog"):
            # a guarded change (the host network) is live but unconfirmed: its files (netplan, networkd)
            # would make it the one the node boots into, and a reboot kills the guard. They are written
            # when the controller confirms (:func:`confirm`); until then a reboot boots the old network
            wanted = set(s["target"] for s in steps if s["action"] in CHANGES)
            journal["deferred"] = {"steps": [s for s in steps if s["action"] in CHANGES],
                                   "files": [f for f in files if f["target"] in wanted]}
            for step in steps:
                if step["action"] in CHANGES:
                    step["deferred"] = True
            journal["deferred"]["node_steps"] = after  # they act on the files: they follow them
        else:
            _carry_out_files(state, steps, files, journal, run, running)
            _carry_out_node_steps(state, after, journal, running, arm)
    except BaseException as exc:
        _disarm(journal)
        undone = set(_undo_all(state, journal))
        _settle(state, journal)
        reason = str(exc) if isinstance(exc, VirshError) else "%s: %s" % (type(exc).__name__, exc)
        for step in node_steps + objects + steps:
            if running and step is running[0]:
                step["action"], step["why"] = "failed", "%s (this run's other changes were undone)" % reason
            elif step.get("done") or step.get("key", step["target"]) in undone or step.get("kind") in undone:
                step["action"], step["why"] = "rolled back", "undone after the failure of another step"
            elif step["action"] in CHANGES:
                step["action"], step["why"] = "not done", "an earlier step failed; nothing was changed here"
        return False
    if journal.get("watchdog"):
        _save_state(state)
        return True  # applied; the journal waits for the controller's confirmation
    state.pop("pending", None)
    _save_state(state)
    _prune_backups(state)
    return True


# -- the guarded commit: a rollback armed on the node, disarmed only by the controller's confirmation --

def _own_source():
    """This program's source without its last line (the ``main(...)`` call): it came on standard input,
    and the bootstrap that ran it handed it over as PROGRAM."""
    source = globals()["PROGRAM"]
    return source[:source.rindex("\nmain(")]


GUARD = "provision-guard"  # the guard's first argument: it and its run's id name it in its command line


def _own_boot():
    """The bootstrap this program was run with (``python -c BOOT``, reading the program on stdin)."""
    with open("/proc/self/cmdline", "rb") as fh:
        argv = fh.read().split(b"\0")
    return argv[argv.index(b"-c") + 1].decode()


def _arm(confirm_timeout, state):
    """The guard of a run: a process of its own session that rolls the run back at the deadline unless
    the controller confirmed it first. Armed once per run, before the first guarded change."""
    import subprocess

    def arm(journal):
        if journal.get("watchdog"):
            return
        deadline = time.time() + confirm_timeout
        program = "%s\nmain(%r)\n" % (_own_source(), {"mode": "watchdog", "run": journal["run"], "deadline": deadline})
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _own_boot(), GUARD, journal["run"]],
                                stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True,
                                start_new_session=True)
        feed = proc.stdin  # type: Any
        feed.write(program.encode("utf-8"))
        feed.close()
        journal["watchdog"] = {"pid": proc.pid, "deadline": deadline, "timeout": confirm_timeout}
        _save_state(state)  # the journal (in the state record) names the guard before any change
    return arm


def _disarm(journal):
    """Stop a run's guard (it is ours when its command line names the guard and the run)."""
    import signal

    guard = journal.get("watchdog")
    if not guard:
        return
    try:
        with open("/proc/%d/cmdline" % guard["pid"], "rb") as fh:
            argv = fh.read().split(b"\0")
            if GUARD.encode() not in argv or journal["run"].encode() not in argv:
                return
        os.kill(guard["pid"], signal.SIGKILL)
    except (FileNotFoundError, ProcessLookupError):
        pass  # the guard has ended already


def _lock(blocking_seconds=0, read_only=False):
    """The node's apply lock (a descriptor), or None while another run holds it. ``read_only`` (--check,
    verify): a shared lock on the lock file where it exists, and no lock at all where nothing was ever
    applied (-1): reading the node must not create /var/lib/provision."""
    import fcntl

    try:
        if read_only:
            lock = os.open(STATE_DIR + "/lock", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        else:
            lock = os.open(STATE_DIR + "/lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if read_only and exc.errno == errno.ENOENT:
            return -1
        raise
    deadline = time.time() + blocking_seconds
    while True:
        try:
            fcntl.flock(lock, (fcntl.LOCK_SH if read_only else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            return lock
        except OSError:
            if time.time() >= deadline:
                os.close(lock)
                return None
            time.sleep(0.1)


def _load_state():
    data, _ = _read_regular(STATE_DIR + "/state.json")
    state = json.loads(data.decode()) if data else {"files": {}}
    schema = state.get("schema", 1)
    if not isinstance(schema, int) or schema > STATE_SCHEMA:
        raise NewerState("%s/state.json has schema %r, written by a newer provision (this one reads up to %d); "
                         "nothing was read or changed: run a provision at least as new" % (STATE_DIR, schema, STATE_SCHEMA))
    return state


def _roll_back(state, reason):
    """Undo the pending run (the guard's deadline passed, or the probes failed) and say so in the record."""
    journal = state["pending"]
    undone = _undo_all(state, journal)
    state["last_rollback"] = {"run": journal["run"], "reason": reason, "undone": undone,
                              "not_restored": journal["not_restored"], "at": time.time()}
    _settle(state, journal)
    return state["last_rollback"]


def watchdog(spec):
    """Sleep until the deadline; then, unless the run was confirmed, roll it back."""
    while time.time() < spec["deadline"]:
        time.sleep(min(1.0, max(0.05, spec["deadline"] - time.time())))
    lock = _lock(blocking_seconds=600)
    if lock is None:
        return
    try:
        state = _load_state()
        if (state.get("pending") or {}).get("run") == spec["run"]:
            _roll_back(state, "not confirmed within %d s of the change" % round(state["pending"]["watchdog"]["timeout"]))
    finally:
        os.close(lock)


def confirm(spec):
    """The controller reached the node on a new connection: check the probes chosen before the change,
    then disarm the guard and close the run (or roll back at once when a probe fails)."""
    result = {}
    lock = _lock(blocking_seconds=10)
    if lock is None:
        return {"error": "the node's apply lock is held; the guard decides at its deadline"}
    try:
        state = _load_state()
        journal = state.get("pending") or {}
        if journal.get("run") != spec["run"]:
            last = state.get("last_rollback") or {}
            if last.get("run") == spec["run"]:
                return {"rolled_back": last}
            return {"error": "run %s does not await confirmation on this node" % spec["run"]}
        problems = []
        for record in journal.get("steps", []):
            if record.get("guarded"):
                module = _module(record["source"], record["name"])
                problems += module["confirm"](module["probes"](record["snapshot"]))
        if problems:
            _disarm(journal)
            return {"rolled_back": _roll_back(state, "; ".join(problems))}
        _disarm(journal)
        deferred = journal.pop("deferred", None)
        if deferred:  # confirmed: now the files, which a reboot would boot from, and the steps after them
            try:
                _carry_out_files(state, deferred["steps"], deferred["files"], journal, journal["run"], [])
                _carry_out_node_steps(state, deferred.get("node_steps", []), journal, [], lambda journal: None)
            except Exception as exc:
                return {"rolled_back": _roll_back(state, "the confirmed run's files could not be written: %s: %s"
                                                  % (type(exc).__name__, exc))}
        state.pop("pending", None)
        state["last_confirmed"] = spec["run"]
        _save_state(state)
        _prune_backups(state)
        result["confirmed"] = True
    finally:
        os.close(lock)
    return result


def status(spec):
    """After the deadline: what became of a run (confirmed, rolled back, or still pending)."""
    state = _load_state()
    last = state.get("last_rollback") or {}
    if last.get("run") == spec["run"]:
        return {"rolled_back": last}
    if (state.get("pending") or {}).get("run") == spec["run"]:
        return {"pending": True}
    if state.get("last_confirmed") == spec["run"]:
        return {"confirmed": True}
    return {"unknown": True}


def _plan_and_apply(spec, state, result):
    """Plan every step of the spec; unless --check, carry them out as one change (:func:`_apply_all`)."""
    node_steps = plan_node_steps(state, spec.get("steps", []))
    objects = plan_objects(state, spec.get("objects", []), force=spec.get("force", False), diff=spec.get("diff"))
    steps = plan(state, spec["files"])
    refused = [s for s in node_steps + objects + steps if s["action"] == "failed"]
    if refused:
        result["error"] = "refused before any change: " + "; ".join(
            "%s: %s" % (s["target"], s["why"]) for s in refused)
    elif not spec.get("check"):
        result["applied"] = _apply_all(state, node_steps, objects, steps, spec["files"], spec["run"],
                                       _arm(spec.get("confirm_timeout", 60), state))
        not_restored = (state.get("pending") or {}).get("not_restored")
        if not result["applied"] and not_restored:
            result["not_restored"] = not_restored
            result["error"] = ("a step failed, and not every change of this run could be undone: %s; the "
                               "next apply tries again" % "; ".join(not_restored))
        elif not result["applied"]:
            result["error"] = "a step failed; every change of this run was undone"
        elif (state.get("pending") or {}).get("watchdog"):
            guard = state["pending"]["watchdog"]
            result["confirm"] = {"deadline": guard["deadline"], "timeout": guard["timeout"],
                                 "now": time.time()}
    # what the controller reports of each step (an object's definition and a step's code stay here)
    result["node_steps"] = [dict((k, s.get(k)) for k in ("kind", "target", "action", "why", "seconds"))
                            for s in node_steps]
    result["management"] = [s["management"] for s in spec.get("steps", []) if s.get("management")]
    result["objects"] = [dict((k, s.get(k)) for k in ("kind", "target", "action", "why", "seconds", "diff"))
                         for s in objects]
    result["steps"] = steps


def main(spec):
    mode = spec.get("mode")
    if mode in ("watchdog", "confirm", "status"):
        answer = globals()[mode](spec)
        if mode != "watchdog":
            sys.stdout.write(json.dumps(answer))
        return

    result = {"steps": [], "recovered": []}  # type: dict
    if spec.get("kinds"):
        KINDS.clear()
        KINDS.update(spec["kinds"])
    check = bool(spec.get("check"))
    if not check:  # --check and verify read the node and change nothing, this folder included
        try:
            os.makedirs(STATE_DIR + "/backup", 0o700)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
    lock = _lock(read_only=check)
    if lock is None:
        result["error"] = "another provision apply is running on this node (%s/lock is held)" % STATE_DIR
        sys.stdout.write(json.dumps(result))
        return
    try:
        state = _load_state()
        if state.get("pending") and not spec.get("check"):
            # a run killed midway, or one whose guard has not fired yet: its guard is stopped, and what it
            # did is put back before anything else
            journal = state["pending"]
            _disarm(journal)
            result["recovered"] = _undo_all(state, journal)
            _settle(state, journal)
            if journal["not_restored"]:
                result["not_restored"] = journal["not_restored"]
                result["error"] = ("run %s could not be undone: %s; nothing else was changed, and the next apply "
                                   "tries again" % (journal["run"], "; ".join(journal["not_restored"])))
        if not result.get("not_restored"):
            _plan_and_apply(spec, state, result)
    except NewerState as exc:
        result["error"] = str(exc)
    except Exception as exc:
        result["error"] = "%s: %s" % (type(exc).__name__, exc)
    finally:
        if lock >= 0:
            os.close(lock)
    sys.stdout.write(json.dumps(result))
