"""Undoing a run: files, libvirt objects, then node steps, newest first; what could not be undone stays
pending (not_restored) for the next run to retry."""
import time

from .files import _undo
from .objects import KINDS, _undo_objects
from .state import _save_state
from .steps import _undo_node_steps


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


def _roll_back(state, reason):
    """Undo the pending run (the guard's deadline passed, or the probes failed) and say so in the record."""
    journal = state["pending"]
    undone = _undo_all(state, journal)
    state["last_rollback"] = {"run": journal["run"], "reason": reason, "undone": undone,
                              "not_restored": journal["not_restored"], "at": time.time()}
    _settle(state, journal)
    return state["last_rollback"]
