"""The apply agent's record on the node: /var/lib/provision (state.json with its schema, backups, the lock),
and the file primitives it writes with: read a regular file without following links, write atomically."""
import errno
import hashlib
import json
import os
import stat
import time

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


CHANGES = ("create", "update", "remove", "release")


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
