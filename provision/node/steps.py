"""The apply agent's node steps: a plugin's own module run on the node (the host network through netlink),
planned, snapshotted, applied and restored."""
import os
import time

from .state import CHANGES, _save_state


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
