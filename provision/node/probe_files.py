"""The probe's reads of files and folders: a file (filtered to the lines asked for), a file provision
manages (never through a symlink, never a FIFO or device, secrets redacted), stat, listdir, exists,
statvfs, which programs are installed, which processes run."""
import os
import stat

from .common import error_of, which

TYPE_CHECKING_NODE = False  # mypy takes it as true (pyproject's always_true): the node imports no typing
if TYPE_CHECKING_NODE:
    from typing import Any  # noqa: F401


MAX_READ = 4 * 1024 * 1024


def op_read(spec):
    path = spec["path"].replace("{release}", os.uname().release)
    if path.endswith(".gz"):
        import gzip

        opener = gzip.open  # type: Any
    else:
        opener = open
    with opener(path, "rb") as fh:
        text = fh.read(spec.get("max", MAX_READ)).decode("utf-8", "replace")
    if spec.get("first_paragraph"):  # e.g. the first CPU of /proc/cpuinfo, not all 256
        text = text.split("\n\n", 1)[0] + "\n"
    if "keep" in spec:  # only the lines that name what was asked for
        text = lines_with(text, spec["keep"])
    return {"path": path, "text": text}


def lines_with(text, keep):
    """The lines of ``text`` (ended by newlines) that contain any of the ``keep`` strings, in order,
    each once. Each string is searched for through the whole text (a kernel config is 6,000 lines and
    a few strings are asked for; testing every line in Python took 6 ms); one spanning lines matches none."""
    spans = set()
    for k in keep:
        at = text.find(k) if k and "\n" not in k else -1
        while at >= 0:
            start = text.rfind("\n", 0, at) + 1
            end = text.find("\n", at)
            end = len(text) if end < 0 else end + 1
            spans.add((start, end))
            at = text.find(k, end)
    return "".join(text[start:end] for start, end in sorted(spans))


KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
         (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


_SECRET_WORDS = {}  # type: dict


def _kind(mode):
    return next((name for test, name in KINDS if test(mode)), "not a regular file")


class Unredactable(Exception):
    """A secret file exists but cannot be read: what to hide of a file beside it is not known."""


def _secret_words(paths):
    """What to hide of each secret file: its whole text, each value after '=' or ':', each long word.
    :class:`Unredactable` where one exists but cannot be read (an absent one has nothing to hide)."""
    words = set()
    for path in paths:
        if path not in _SECRET_WORDS:
            found = set()
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                try:
                    if stat.S_ISREG(os.fstat(fd).st_mode):
                        text = os.read(fd, 65536).decode("utf-8", "replace")
                        found.add(text.strip())
                        for line in text.splitlines():
                            for sep in "=:":
                                if sep in line:
                                    found.add(line.split(sep, 1)[1].strip().strip("'\""))
                            found.update(w for w in line.split() if len(w) >= 16)
                finally:
                    os.close(fd)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise Unredactable("the secret file %s cannot be read to hide its text (%s); the file is not shown"
                                   % (path, error_of(exc)["error"])) from None
            _SECRET_WORDS[path] = set(w for w in found if len(w) >= 6)
        words.update(_SECRET_WORDS[path])
    return sorted(words, key=len, reverse=True)


def op_node_file(spec):
    """A file provision manages, as it is on the node: never read through a symlink, never a FIFO or a
    device (opening one could block); the text of each file in ``secrets`` replaced by <redacted>."""
    path = spec["path"]
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {"path": path, "missing": True}
    try:
        words = _secret_words(spec.get("secrets", ()))
    except Unredactable as exc:
        return {"path": path, "error": str(exc)}
    if stat.S_ISLNK(st.st_mode):
        return {"path": path, "symlink": os.readlink(path)}
    if not stat.S_ISREG(st.st_mode):
        return {"path": path, "kind": _kind(st.st_mode)}
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped since the lstat
            return {"path": path, "kind": _kind(st.st_mode)}
        chunks, size = [], 0
        while size < MAX_READ:
            chunk = os.read(fd, MAX_READ - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    text = b"".join(chunks).decode("utf-8", "replace")
    for word in words:
        text = text.replace(word, "<redacted>")
    return {"path": path, "text": text, "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
            "truncated": size >= MAX_READ}


def op_read_first(spec):
    release = os.uname().release
    tried = []
    for path in spec["paths"]:
        path = path.replace("{release}", release)
        try:
            return op_read(dict(spec, path=path))
        except OSError as exc:
            tried.append("%s (%s)" % (path, error_of(exc)["error"]))
    return {"error": "none readable: " + "; ".join(tried)}


def op_stat(spec):
    st = os.stat(spec["path"])
    kind = "char" if stat.S_ISCHR(st.st_mode) else "block" if stat.S_ISBLK(st.st_mode) else \
        "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
    return {"path": spec["path"], "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid, "kind": kind}


def op_listdir(spec):
    return {"path": spec["path"], "names": sorted(os.listdir(spec["path"]))}


def op_processes(spec):
    """Names (comm) of running processes but the probe's own children (the commands it runs meanwhile,
    ``libvirtd --version`` among them, are no running daemon); a zombie (dead, not yet reaped) does not run."""
    names = set()
    own = str(os.getpid())
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/stat" % pid) as fh:
                    stat_line = fh.read()
            except OSError:
                continue
            # "pid (comm) state ...": comm may hold spaces and parentheses, the state follows the last ')'
            comm = stat_line[stat_line.index("(") + 1:stat_line.rindex(")")]
            fields = stat_line[stat_line.rindex(")") + 2:].split()
            # a zombie (dead, not yet reaped) does not run; nor is the probe's own ``libvirtd --version`` the daemon
            if fields[0] not in ("Z", "X") and fields[1] != own:
                names.add(comm)
    return {"names": sorted(names)}


def op_installed(spec):
    """Where each program is (PATH, then the sbin folders), and what each glob pattern matches."""
    import glob

    return {"programs": dict((name, which(name)) for name in spec.get("programs", [])),
            "globs": dict((pattern, sorted(glob.glob(pattern))) for pattern in spec.get("globs", []))}


def op_exists(spec):
    return {"path": spec["path"], "exists": os.path.exists(spec["path"])}


def op_statvfs(spec):
    path = spec["path"]
    while not os.path.exists(path) and path not in ("/", ""):
        path = os.path.dirname(path)  # the filesystem the path will live on
    st = os.statvfs(path)
    return {"path": path, "free": st.f_bavail * st.f_frsize, "total": st.f_blocks * st.f_frsize}
