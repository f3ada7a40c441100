"""The apply agent: run on a node (stdlib only, Python 3.6+), sent with its parts in one bundle
(provision.node.bundle). Under the node's lock it finishes a run left pending, plans every node step,
libvirt object and file, and unless --check carries the plan out as one change; it prints one JSON object."""
import errno
import json
import os
import sys
import time

from .files import _carry_out_files, plan, read_files
from .guard import _arm, _disarm, confirm, status, watchdog
from .objects import KINDS, VirshError, _carry_out_objects, plan_objects, read_objects
from .state import CHANGES, STATE_DIR, NewerState, _load_state, _lock, _prune_backups, _save_state
from .steps import _carry_out_node_steps, plan_node_steps
from .undo import _settle, _undo_all


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


def _plan_and_apply(spec, state, result):
    """Plan every step of the spec; unless --check, carry them out as one change (:func:`_apply_all`)."""
    node_steps = plan_node_steps(state, spec.get("steps", []))
    # read what the plans decide from, then plan (pure: tests/provision/test_apply_plans.py)
    objects = plan_objects(state, spec.get("objects", []), read_objects(spec.get("objects", [])),
                           force=spec.get("force", False), diff=spec.get("diff"))
    steps = plan(state, spec["files"], read_files(state, spec["files"]))
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
        answer = {"watchdog": watchdog, "confirm": confirm, "status": status}[mode](spec)
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
