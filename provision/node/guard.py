"""The guarded commit: a rollback armed on the node before a change that may cut it off, disarmed only by
the controller's confirmation over a new connection; the guard process, confirm and status."""
import os
import sys
import time

from .files import _carry_out_files
from .state import _load_state, _lock, _prune_backups, _save_state
from .steps import _carry_out_node_steps, _module
from .undo import _roll_back

TYPE_CHECKING_NODE = False  # mypy takes it as true (pyproject's always_true): the node imports no typing
if TYPE_CHECKING_NODE:
    from typing import Any  # noqa: F401


GUARD = "provision-guard"  # the guard's first argument: it and its run's id name it in its command line


# the guard's bootstrap: its program comes on its standard input, read to the end
GUARD_BOOT = ('import sys;S=sys.stdin.buffer.read().decode("utf-8");'
              'exec(compile(S,"<provision-guard>","exec"),{"__name__":"__main__","PROGRAM":S})')


def _guard_program(spec):
    """The guard's program: the loader, every module this process registered (in their order), then the
    agent's ``main(spec)``; the same whether this process ran the agent's bundle or a session."""
    package = sys.modules[__package__]
    loader = package.PROGRAM[:package.PROGRAM.index("\nmain = _bundle(")]
    return "%s\n_bundle(%r)\nsys.modules[%r].main(%r)\n" % (loader, package.SOURCES, __package__ + ".agent", spec)


def _arm(confirm_timeout, state):
    """The guard of a run: a process of its own session that rolls the run back at the deadline unless
    the controller confirmed it first. Armed once per run, before the first guarded change."""
    import subprocess

    def arm(journal):
        if journal.get("watchdog"):
            return
        deadline = time.time() + confirm_timeout
        program = _guard_program({"mode": "watchdog", "run": journal["run"], "deadline": deadline})
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", GUARD_BOOT, GUARD, journal["run"]],
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
