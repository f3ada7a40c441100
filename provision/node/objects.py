"""The apply agent's libvirt objects, through virsh on the node (argument vectors, no shell): each kind
described as data (KINDS, sent by the controller), planned, defined, started, journaled and undone."""
import os
import stat
import time

from .common import read_regular
from .state import _digest, _save_state

TYPE_CHECKING_NODE = False  # mypy takes it as true (pyproject's always_true): the node imports no typing
if TYPE_CHECKING_NODE:
    from typing import Any  # noqa: F401

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
    not_installed = False  # virsh itself is missing: nothing can be defined on this node


class NotInstalled(VirshError):
    not_installed = True


def virsh(*args):
    import subprocess

    try:
        proc = subprocess.run(["virsh", "-q", "-c", "qemu:///system"] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True)
    except OSError as exc:  # a node planned before its remedies install libvirt (apply --check): nothing is defined
        raise NotInstalled("virsh cannot run: %s (libvirt's client is not installed)" % exc.strerror) from None
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


def _users(kind, name, live, guests):
    """Running guests that use a network (an interface on it) or a pool (a disk from it, by pool name
    or by a path under the pool's target folder); ``guests`` holds each running guest's (name, XML)."""
    import xml.etree.ElementTree as ET

    used_by = KINDS[kind].get("used_by", "")
    if not used_by:
        return []
    folder = live.findtext("target/path") if used_by == "pool" else None
    users = []
    for dom, xml in guests:
        doc = ET.fromstring(xml)
        if used_by == "network":
            used = any(s.get("network") == name for s in doc.iterfind("devices/interface/source"))
        else:
            used = any(s.get("pool") == name or (folder and (s.get("file") or s.get("dev") or "").startswith(folder + "/"))
                       for s in doc.iterfind("devices/disk/source"))
        if used:
            users.append(dom)
    return users


def _value_digest(obj):
    data, _ = read_regular(obj["value_file"])
    if data is None:
        raise ValueError("the value file %s is missing on the node" % obj["value_file"])
    return _digest(data)


def read_objects(objects):
    """What :func:`plan_objects` needs of the node, per object key: its identity, its live definition
    (XML text; None when not defined), whether it is active and set to autostart, its value file's
    digest (or why there is none); ``{"error": why}`` where libvirt could not be asked. And
    ``guests``, each running guest's (name, XML), read only where a running network or pool would be
    redefined (who uses it decides whether it may be restarted)."""
    import xml.etree.ElementTree as ET

    found = {"objects": {}, "guests": None}  # type: dict
    redefined_live = False
    for obj in objects:
        entry = {}  # type: dict
        try:
            verbs, kind = _verbs(obj["kind"]), KINDS[obj["kind"]]
            ident = _ident(obj)
            entry["ident"], entry["live"] = ident, None
            if ident:
                try:
                    entry["live"] = virsh(*(verbs["dump"] + [ident]))
                except VirshError as exc:
                    # not defined, or no libvirt installed yet (apply --check before the remedies): None;
                    # a libvirt that does not answer is this object's error
                    if not (_gone(exc) or exc.not_installed):
                        raise
            if entry["live"] is not None and kind["startable"]:
                entry["active"], entry["autostart"] = _info(obj, ident)
                if entry["active"] and kind.get("used_by"):
                    try:
                        redefined_live |= _difference(ET.fromstring(entry["live"]), ET.fromstring(obj["xml"])) is not None
                    except ET.ParseError:
                        pass  # the plan says so
            if kind["holds_value"]:
                try:
                    entry["value_digest"] = _value_digest(obj)
                except (ValueError, OSError) as exc:
                    entry["value_error"] = str(exc)
        except (VirshError, ValueError, OSError) as exc:
            entry = {"error": str(exc)}
        found["objects"]["%s:%s" % (obj["kind"], obj["label"])] = entry
    if redefined_live:
        try:
            found["guests"] = [(dom, virsh("dumpxml", dom)) for dom in virsh("list", "--name").split()]
        except VirshError as exc:
            found["guests_error"] = str(exc)
    return found


def plan_objects(state, objects, found, force=False, diff=False):  # noqa: C901 (each object's states: ours, foreign, drifted, in use)
    """Each libvirt object's actions: define (create or update), start, autostart, set value; and
    remove for what provision defined before that is no longer rendered. Pure: it decides from
    ``found`` (:func:`read_objects`)."""
    import xml.etree.ElementTree as ET

    owned = state.setdefault("objects", {})
    steps, wanted = [], set()
    for obj in objects:
        key = "%s:%s" % (obj["kind"], obj["label"])
        wanted.add(key)
        step = {"key": key, "kind": obj["kind"], "target": obj["label"], "object": obj, "todo": []}
        steps.append(step)
        entry = found["objects"][key]
        try:
            if "error" in entry:
                raise ValueError(entry["error"])
            live = ET.fromstring(entry["live"]) if entry["live"] is not None else None
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
                active, autostart = (entry["active"], entry["autostart"]) if live is not None else (False, False)
                if active and "define" in step["todo"]:
                    if found.get("guests_error"):
                        raise ValueError(found["guests_error"])
                    users = _users(obj["kind"], obj["name"], live, found.get("guests") or [])
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
            elif KINDS[obj["kind"]]["holds_value"]:
                if "value_error" in entry:
                    raise ValueError(entry["value_error"])
                if (owned.get(key) or {}).get("value_digest") != entry["value_digest"]:
                    step["todo"].append("set value")
            if step["action"] == "unchanged" and step["todo"]:
                step["action"], step["why"] = "update", ", ".join(step["todo"])
        except (ValueError, ET.ParseError) as exc:
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


def _carry_out_objects(state, steps, journal, run, running):
    for step in steps:
        if step["action"] in ("create", "update", "remove"):
            running[:] = [step]
            started = time.time()
            _do(step, journal, state, run)
            step["done"] = True
            step["seconds"] = round(time.time() - started, 4)
