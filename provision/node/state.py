"""The apply agent's record on the node: /var/lib/provision (state.json with its schema, backups, the lock)."""
import hashlib
import json
import os

from .common import atomic_write, lock, read_regular

STATE_DIR = "/var/lib/provision"


def _digest(data):
    return hashlib.sha256(data).hexdigest()


# the state record's layout: a record without "schema" is of the first layout (read, and rewritten with
# this number); one of a later layout comes from a newer provision, and this one refuses to read it
STATE_SCHEMA = 1


class NewerState(Exception):
    pass


def _save_state(state):
    state["schema"] = STATE_SCHEMA
    atomic_write(STATE_DIR + "/state.json", json.dumps(state, indent=1, sort_keys=True).encode(), 0o600)


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


CHANGES = ("create", "update", "remove", "release")


def _lock(blocking_seconds=0, read_only=False):
    """The node's apply lock (a descriptor), or None while another run holds it. ``read_only`` (--check,
    verify): a shared lock on the lock file where it exists, and no lock at all where nothing was ever
    applied (-1): reading the node must not create /var/lib/provision."""
    return lock(STATE_DIR + "/lock", blocking_seconds, read_only)


def _load_state():
    data, _ = read_regular(STATE_DIR + "/state.json")
    state = json.loads(data.decode()) if data else {"files": {}}
    schema = state.get("schema", 1)
    if not isinstance(schema, int) or schema > STATE_SCHEMA:
        raise NewerState("%s/state.json has schema %r, written by a newer provision (this one reads up to %d); "
                         "nothing was read or changed: run a provision at least as new" % (STATE_DIR, schema, STATE_SCHEMA))
    return state
