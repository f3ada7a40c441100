"""The apply agent's files: plan each rendered file (create, update, unchanged, remove, release), carry the
plan out with a backup journaled before each change, and undo it."""
import errno
import os
import stat
import time

from .common import atomic_write, read_regular
from .state import CHANGES, _backup_path, _digest, _save_state


def _undo(state, journal):
    """Undo a journal's file steps, newest first: restore the backup, or remove what the step created.
    ``(undone, problems, records whose undo failed)``: a failed one keeps its old state record."""
    undone, problems, kept = [], [], []  # type: list, list, list
    for step in reversed(journal["done"]):
        target = step["target"]
        try:
            if step.get("backup"):
                data, _ = read_regular(step["backup"])
                if data is None:
                    raise OSError(errno.ENOENT, "its backup %s is missing" % step["backup"])
                atomic_write(target, data, step["old_mode"], step.get("old_uid", 0), step.get("old_gid", 0))
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


def read_files(state, files):
    """What :func:`plan` needs of the node: for each rendered target and each file provision wrote
    before, ``{"data": bytes, "mode": int}``, None when absent, or ``{"error": why}`` where it is not a
    regular file (a symlink, a FIFO: never followed, never opened)."""
    found = {}  # type: dict
    for target in [f["target"] for f in files] + sorted(state["files"]):
        if target not in found:
            try:
                data, st = read_regular(target)
            except ValueError as exc:
                found[target] = {"error": str(exc)}
                continue
            found[target] = None if data is None else {"data": data, "mode": stat.S_IMODE(st.st_mode)}
    return found


def plan(state, files, found):
    """Each file's action: create, update (content or mode), unchanged; and remove for what provision
    wrote before that is no longer rendered. Pure: it decides from ``found`` (:func:`read_files`)."""
    steps, wanted = [], set()
    for f in files:
        target, data, mode = f["target"], f["content"].encode(), int(f["mode"], 8)
        wanted.add(target)
        current = found[target]
        if current and "error" in current:
            steps.append({"target": target, "action": "failed", "why": current["error"]})
            continue
        if current is None:
            action, why = "create", "absent"
        elif current["data"] != data:
            action, why = "update", "content differs"
        elif current["mode"] != mode:
            action, why = "update", "mode %04o, wants %04o" % (current["mode"], mode)
        else:
            action, why = "unchanged", ""
        steps.append({"target": target, "action": action, "why": why, "mode": mode, "digest": _digest(data)})
    for target in sorted(set(state["files"]) - wanted):
        record, current = state["files"][target], found[target]
        if current and "error" in current:
            steps.append({"target": target, "action": "failed", "why": current["error"]})
        elif current is None:
            steps.append({"target": target, "action": "remove", "why": "no longer rendered; already gone"})
        elif not record.get("created"):
            steps.append({"target": target, "action": "release",
                          "why": "no longer rendered; it was there before provision, so it stays as it is"})
        elif _digest(current["data"]) != record["digest"]:
            steps.append({"target": target, "action": "failed",
                          "why": "no longer rendered, but changed since provision wrote it: left as it is"})
        else:
            steps.append({"target": target, "action": "remove", "why": "no longer rendered"})
    return steps


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
        current, st = (None, None) if action == "release" else read_regular(target)
        if current is not None:
            backup = _backup_path(run, target)
            atomic_write(backup, current, 0o600)
            assert st is not None  # read with the data
            record.update(backup=backup, old_mode=stat.S_IMODE(st.st_mode), old_uid=st.st_uid, old_gid=st.st_gid)
        journal["done"].append(record)
        _save_state(state)  # the journal says what to undo before the change is made
        if action in ("remove", "release"):
            if action == "remove" and current is not None:
                os.unlink(target)
            state["files"].pop(target, None)
        else:
            atomic_write(target, contents[target], step["mode"])
            old = state["files"].get(target)
            state["files"][target] = {"digest": step["digest"], "run": run,
                                      "created": old["created"] if old else action == "create"}
        step["done"] = True
        step["seconds"] = round(time.time() - started, 4)
