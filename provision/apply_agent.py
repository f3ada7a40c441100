"""The apply agent: run on a node (stdlib only, Python 3.6+) to make its managed files match the rendered ones.

Sent like the probe, as ``python3 -I -S -c SOURCE`` with ``main({...})`` appended; prints one
Python literal. Under a lock (``/var/lib/provision/lock``) it reads the state record
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
    tmp = "%s/.%s.provision-%d" % (folder, os.path.basename(path), os.getpid())
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


def _save_state(state):
    _atomic_write(STATE_DIR + "/state.json", json.dumps(state, indent=1, sort_keys=True).encode(), 0o600)


def _backup_path(run, target):
    return "%s/backup/%s%s" % (STATE_DIR, run, target)


def _undo(state, journal):
    """Undo a journal's steps, newest first: restore the backup, or remove what the step created."""
    undone = []
    for step in reversed(journal["done"]):
        target = step["target"]
        if step.get("backup"):
            data, _ = _read_regular(step["backup"])
            _atomic_write(target, data, step["old_mode"], step.get("old_uid", 0), step.get("old_gid", 0))
        elif step["action"] == "create":
            try:
                os.unlink(target)
            except (FileNotFoundError, NotADirectoryError):  # the write it journaled never happened
                pass
        if "old_state" in step:
            if step["old_state"] is None:
                state["files"].pop(target, None)
            else:
                state["files"][target] = step["old_state"]
        undone.append(target)
    return undone


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
        steps.append({"target": target, "action": action, "why": why, "mode": mode, "digest": _digest(data),
                      "made_by_provision": target in state["files"]})
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


def apply(state, steps, files, run):
    contents = dict((f["target"], f["content"].encode()) for f in files)
    journal = {"run": run, "done": []}
    state["pending"] = journal
    _save_state(state)
    running = None
    try:
        for step in steps:
            running = step
            target, action = step["target"], step["action"]
            if action == "release":
                journal["done"].append({"target": target, "action": action, "old_state": state["files"].pop(target, None)})
                step["done"] = True
            if action not in ("create", "update", "remove"):
                continue
            record = {"target": target, "action": action, "old_state": state["files"].get(target)}
            current, st = _read_regular(target)
            if current is not None:
                backup = _backup_path(run, target)
                _atomic_write(backup, current, 0o600)
                record.update(backup=backup, old_mode=stat.S_IMODE(st.st_mode), old_uid=st.st_uid, old_gid=st.st_gid)
            journal["done"].append(record)
            _save_state(state)  # the journal says what to undo before the change is made
            if action == "remove":
                if current is not None:
                    os.unlink(target)
                state["files"].pop(target, None)
            else:
                _atomic_write(target, contents[target], step["mode"])
                old = state["files"].get(target)
                state["files"][target] = {"digest": step["digest"], "run": run,
                                          "created": old["created"] if old else action == "create"}
            step["done"] = True
    except BaseException as exc:
        undone = _undo(state, journal)
        state.pop("pending", None)
        _save_state(state)
        for step in steps:
            if step is running:
                step["action"], step["why"] = "failed", "%s: %s (this run's other changes were undone)" % (
                    type(exc).__name__, exc)
            elif step.get("done") or step["target"] in undone:
                step["action"], step["why"] = "rolled back", "undone after the failure of another step"
        return False
    state.pop("pending", None)
    _save_state(state)
    return True


def main(spec):
    import fcntl

    result = {"steps": [], "recovered": []}
    try:
        os.makedirs(STATE_DIR + "/backup", 0o700)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise
    lock = os.open(STATE_DIR + "/lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        result["error"] = "another provision apply is running on this node (%s/lock is held)" % STATE_DIR
        sys.stdout.write(repr(result))
        return
    try:
        data, _ = _read_regular(STATE_DIR + "/state.json")
        state = json.loads(data.decode()) if data else {"files": {}}
        if state.get("pending") and not spec.get("check"):
            # a run killed midway: put back what it did before anything else
            result["recovered"] = _undo(state, state["pending"])
            state.pop("pending", None)
            _save_state(state)
        steps = plan(state, spec["files"])
        result["steps"] = steps
        if any(s["action"] == "failed" for s in steps):
            result["error"] = "refused before any change: " + "; ".join(s["why"] for s in steps if s["action"] == "failed")
        elif not spec.get("check"):
            result["applied"] = apply(state, steps, spec["files"], spec["run"])
    except Exception as exc:
        result["error"] = "%s: %s" % (type(exc).__name__, exc)
    finally:
        os.close(lock)
    sys.stdout.write(repr(result))
