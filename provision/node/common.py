"""What every node module shares (stdlib only, Python 3.6+), first in each bundle: read a regular file
without following links, write a file atomically, take a lock, run an argument vector, find a program,
answer in JSON where a fact that cannot be encoded loses only itself, and one style of error text."""
import errno
import json
import os
import stat
import subprocess
import time

# where programs are looked for besides PATH: a non-login shell of a node often lacks the sbin folders
SBIN = ("/usr/sbin", "/sbin", "/usr/libexec")


def error_of(exc):
    """An answer that could not be had, in one style: ``{"error": "ENOENT: No such file or directory"}``."""
    code = errno.errorcode.get(getattr(exc, "errno", None) or 0, type(exc).__name__)
    return {"error": "%s: %s" % (code, getattr(exc, "strerror", None) or exc)}


def read_regular(path):
    """(bytes, stat) of a regular file, (None, None) when absent; ValueError for a symlink or anything that
    is not a regular file (never followed, never opened: a FIFO would block, a device could be anything)."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # absent (a folder on its way may be a file: writing says so)
        return None, None
    if stat.S_ISLNK(st.st_mode):
        raise ValueError("%s is a symlink to %s; provision does not replace it" % (path, os.readlink(path)))
    if not stat.S_ISREG(st.st_mode):
        raise ValueError("%s is not a regular file; provision does not replace it" % path)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
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


def atomic_write(path, data, mode, uid=0, gid=0):
    """Write ``data`` to ``path`` with ``mode`` (and, as root, owner ``uid``:``gid``) in one rename: a reader
    sees the old file or the new one, never a part."""
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
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
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


def lock(path, blocking_seconds=0, read_only=False):
    """A lock on ``path`` (its descriptor), waiting up to ``blocking_seconds``; None while another process
    holds it. ``read_only``: a shared lock where the file exists, and -1 (no lock) where it does not, so
    that reading never creates it."""
    import fcntl

    try:
        if read_only:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        else:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if read_only and exc.errno == errno.ENOENT:
            return -1
        raise
    deadline = time.time() + blocking_seconds
    while True:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if read_only else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            return fd
        except OSError:
            if time.time() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.1)


def run(argv, timeout=None, env=None):
    """(exit code, standard output, standard error) of an argument vector, never through a shell, with
    nothing on its standard input; 127 when it cannot be run (not installed)."""
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=timeout, env=env)
    except OSError as exc:
        return 127, "", "%s: %s" % (argv[0], exc.strerror or exc)
    return proc.returncode, proc.stdout, proc.stderr


def which(name, folders=None):
    """The path of the program ``name``: in ``folders`` where given, else in PATH then the sbin folders;
    a name with a slash is itself (when executable). None when not found."""
    if "/" in name:
        return name if os.access(name, os.X_OK) else None
    if folders is None:
        folders = os.environ.get("PATH", "").split(os.pathsep) + list(SBIN)
    for folder in folders:
        path = os.path.join(folder, name)
        if folder and os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
    return None


def as_json(answers, label="the answer"):
    """``answers`` (a dict) as one JSON object; an answer JSON cannot hold becomes that key's error (``label``
    names what it was), never the loss of the others."""
    try:
        return json.dumps(answers)
    except (TypeError, ValueError):
        for key, answer in answers.items():
            try:
                json.dumps(answer)
            except (TypeError, ValueError) as exc:
                answers[key] = {"error": "%s is not JSON: %s" % (label, exc)}
        return json.dumps(answers)
