"""``render --out DIR``: each node's tree written into DIR/<host>/ with its manifest, safely.

- Only what provision made is replaced: a host folder in the way must hold provision's
  ``manifest.json`` and nothing it does not list; anything else is an input error, nothing changed.
- DIR must not be a system folder (after symlinks) nor inside the inventory.
- One render at a time per DIR: a lock on the folder itself; the next one waits.
- Everything is written into a staging folder inside DIR first; each host folder is then exchanged
  with its new tree in one ``renameat2(RENAME_EXCHANGE)``, with SIGINT and SIGTERM held back, so a
  host folder is always either its old tree or its new one, never missing. A render ended by a signal
  leaves its (marked) staging folder and ends at once; a staging folder left by a killed or interrupted
  render is removed by the next one.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from provision.errors import InputError, ProvisionError
from provision.stages.render import MANIFEST, RenderedFile, manifest_text

STAGING_PREFIX = ".render-"
STAGING_MARK = ".provision-staging"  # inside each staging folder: it is ours to remove
# folders that hold the system: DIR may not be one, nor (for the first group) inside one
SYSTEM_TREES = ("/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/dev", "/proc",
                "/sys", "/run", "/var/lib/dpkg", "/var/lib/apt", "/var/log", "/var/spool", "/var/cache", "/var/mail")
SYSTEM_FOLDERS = ("/", "/home", "/root", "/var", "/var/lib", "/var/tmp", "/tmp", "/srv", "/opt", "/mnt", "/media",
                  "/dev/shm")
SCRATCH = ("/dev/shm/",)  # inside a system tree, yet anyone's scratch space, as /tmp is


class Terminated(BaseException):
    """SIGTERM arrived while the tree was written: cleaned up, then the process ends by that signal."""


def check_out_folder(out: Path, *, protected: list[Path]) -> None:
    """Refuse an ``--out`` that is, or resolves through symlinks to, a system folder, or that is an inventory's
    folder or inside it (for an inventory file: its folder, or its group_vars/ or host_vars/)."""
    real = Path(os.path.realpath(out))
    via = f" (through symlinks: {real})" if str(real) != os.path.abspath(out) else ""
    inside = any(str(real) == t or str(real).startswith(t + "/") for t in SYSTEM_TREES)
    if str(real) in SYSTEM_FOLDERS or (inside and not str(real).startswith(SCRATCH)):
        raise InputError(f"--out {out}: is a system folder{via}; render into a folder of your own")
    for path in protected:
        if path.is_dir():  # an inventory folder: every file in it is a source, at any depth
            folders, beside = [Path(os.path.realpath(path))], None
        else:  # a file: its folder holds it, group_vars/ and host_vars/
            beside = Path(os.path.realpath(path.parent))
            folders = [beside / "group_vars", beside / "host_vars"]
        for folder in folders:
            if real == folder or folder in real.parents:
                raise InputError(f"--out {out}: is inside the inventory's folder {folder}{via}; host trees would "
                                 "mix with (or replace) inventory files")
        if real == beside:
            raise InputError(f"--out {out}: is the folder of the inventory {path}{via}; host trees would mix with "
                             "(or replace) it and its group_vars/ and host_vars/")


@contextmanager
def locked(out: Path, *, wait: float):
    """Hold the lock on ``out`` (flock on the folder itself), waiting up to ``wait`` seconds for another render."""
    deadline = time.monotonic() + wait
    while True:
        fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise ProvisionError(f"another provision render is writing into {out}; waited {wait:g} s "
                                             "(--timeout) for it to finish") from None
                    time.sleep(0.05)
            try:
                same = os.stat(out).st_ino == os.fstat(fd).st_ino  # not removed by the render we waited for
            except FileNotFoundError:
                same = False
            if same:
                yield
                return
        finally:
            os.close(fd)
        os.makedirs(out, exist_ok=True)


def remove_stale_staging(out: Path) -> None:
    """Staging folders a killed render left in ``out`` (only ours: named so and marked inside). Called
    with the lock held, so none of them belongs to a render still running."""
    for entry in os.scandir(out):
        if entry.name.startswith(STAGING_PREFIX) and entry.is_dir(follow_symlinks=False):
            inside = os.listdir(entry.path)
            if STAGING_MARK in inside or not inside:  # marked, or killed before it was: empty
                remove_staging(entry.path)


def remove_staging(path: str) -> None:
    """Remove a staging folder, its mark last: a render killed while removing it leaves it marked."""
    for entry in os.scandir(path):
        if entry.name != STAGING_MARK:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
    shutil.rmtree(path, ignore_errors=True)


def in_the_way(out: Path, host: str) -> str | None:
    """Why ``out/<host>`` may not be replaced, or None: it must be absent, or a folder holding provision's
    manifest for this host and only the files that manifest lists (and their folders)."""
    folder = f"{out}/{host}"
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "a file"
        return f"{folder} is {kind}, not a host tree provision rendered"
    try:
        with open(os.open(f"{folder}/{MANIFEST}", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)) as fh:
            data = json.loads(fh.read(16 * 1024 * 1024))
        listed = {f["path"] for f in data["files"]}
        if data.get("host") != host or not all(isinstance(p, str) for p in listed):
            raise ValueError
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return f"{folder} holds no manifest.json of provision's for {host}; it was not rendered by provision"
    folders = {p for path in listed for p in _folders(path)}
    for root, dirs, files in os.walk(folder):
        rel = os.path.relpath(root, folder)
        prefix = "" if rel == "." else rel + "/"
        for name in dirs:
            if os.path.islink(f"{root}/{name}") or prefix + name not in folders:
                return f"{root}/{name} is not listed in {folder}/{MANIFEST}; provision did not make it"
        for name in files:
            path = prefix + name
            if path != MANIFEST and (path not in listed or not os.path.isfile(f"{root}/{name}")
                                     or os.path.islink(f"{root}/{name}")):
                return f"{root}/{name} is not listed in {folder}/{MANIFEST}; provision did not make it"
    return None


def _write(path: str, text: str, mode: int) -> None:
    # created with its mode (a stricter umask only narrows it): never readable wider, not even briefly
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        data = memoryview(text.encode())
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


def write_host(staging: str, host: str, files: list[RenderedFile]) -> None:
    """``staging/<host>/...`` and its manifest."""
    root = f"{staging}/{host}"
    os.mkdir(root)
    made: set[str] = set()
    for f in files:
        relative = f.relative
        for folder in _folders(relative):
            if folder not in made:
                os.mkdir(f"{root}/{folder}")
                made.add(folder)
        _write(f"{root}/{relative}", f.content, int(f.mode, 8))
    _write(f"{root}/{MANIFEST}", manifest_text(host, files), 0o644)


@lru_cache(maxsize=1024)
def _folders(relative: str) -> tuple[str, ...]:
    """The folders above a relative path, outermost first: 'etc/a/b.conf' -> ('etc', 'etc/a')."""
    parts = relative.split("/")[:-1]
    return tuple("/".join(parts[:i]) for i in range(1, len(parts) + 1))


def render_tree(out: Path, *, nodes, decisions, hooks, workers: int | None = None, rendered=None,
                protected: Sequence[Path] = (), wait: float = 30) -> int:
    """Render every node into ``out/<host>/...`` with its manifest and return the number of files.

    All or nothing: an error leaves ``out`` as it was (and removes it if this run made it). Large
    inventories are rendered by one forked worker per CPU. ``nodes`` and ``decisions`` come from
    :func:`provision.stages.render.prepare`; ``rendered``, from :func:`provision.stages.render.render_all`, is written as it is.
    """
    check_out_folder(out, protected=list(protected))
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file, not a folder")
    made = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot make the output folder there: {exc.strerror}"
                         f"{' (' + exc.filename + ')' if exc.filename and exc.filename != str(out) else ''}") from None
    with _terminable() as terminated:
        try:
            with locked(out, wait=wait):
                return _render_locked(out, made, nodes, decisions, hooks, workers, rendered)
        finally:
            if terminated():
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)  # end as SIGTERM asked, now that nothing is half done


def _render_locked(out: Path, made: bool, nodes, decisions, hooks, workers, rendered) -> int:
    from provision.parallel import fork_map
    from provision.stages.render import _refuse, _render_or_problems

    remove_stale_staging(out)
    staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out)
    open(f"{staging}/{STAGING_MARK}", "w").close()

    def render_host(node) -> tuple[int, list[str], str | None]:
        if rendered is not None:
            files, problems = rendered[node.name], list[str]()
        else:
            files, problems = _render_or_problems(node, decisions, hooks)
        if files is not None:
            write_host(staging, node.name, files)
        return len(files or ()), problems, in_the_way(out, node.name)

    try:
        results = fork_map(render_host, nodes, per_worker=100, workers=workers)
        _refuse([line for _, lines, _ in results for line in lines])
        blocked = [why for _, _, why in results if why]
        if blocked:
            more = f" (and {len(blocked) - 1} more)" if len(blocked) > 1 else ""
            raise InputError(f"--out {out}: {blocked[0]}{more}; nothing was changed. Move it away or choose "
                             "another --out")
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | Terminated):
            # end now: removing 45,000 staged files could take half a minute on a loaded machine. The
            # staging folder is marked as ours, and the next render into ``out`` removes it first
            raise
        remove_staging(staging)
        if made:
            shutil.rmtree(out, ignore_errors=True)  # a folder this run made holds nothing else
        if isinstance(exc, OSError):
            raise ProvisionError(f"cannot write the rendered tree into {out}: {exc}; nothing was moved into place") from None
        raise
    try:
        with _signals_held():
            _swap_in(out, staging, [n.name for n in nodes])
    except (KeyboardInterrupt, Terminated):
        # every host is in place, old or new; a signal held during the exchange arrives here. End now:
        # the marked staging folder (with the trees swapped out) is the next render's to remove
        raise
    except BaseException:
        remove_staging(staging)
        raise
    remove_staging(staging)  # the staging folder, and the trees swapped out; a signal here ends it at once
    return sum(count for count, _, _ in results)


_libc = None


def _exchange(a: str, b: str) -> bool:
    """Swap two paths in one step (renameat2 RENAME_EXCHANGE); False where the filesystem cannot."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(_libc, "renameat2"):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if _libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), a)


def _swap_in(out: Path, staging: str, hosts: list[str]) -> None:
    """Put each host's new tree in place; its old one ends up in ``staging``. Where the old tree exists
    the two are exchanged in one step; a failure (a mount point cannot be renamed) puts every host done
    so far back as it was."""
    done: list[tuple[str, bool]] = []
    for host in hosts:
        new, target = f"{staging}/{host}", f"{out}/{host}"
        try:
            if os.path.lexists(target):
                if not _exchange(new, target):  # two renames: the only moment the folder is missing
                    os.rename(target, f"{staging}/.old-{host}")
                    os.rename(new, target)
                    os.rename(f"{staging}/.old-{host}", new)
                done.append((host, True))
            else:
                os.rename(new, target)
                done.append((host, False))
        except OSError as exc:
            for name, had_old in reversed(done):
                if had_old:
                    if not _exchange(f"{staging}/{name}", f"{out}/{name}"):
                        os.rename(f"{out}/{name}", f"{staging}/.new-{name}")
                        os.rename(f"{staging}/{name}", f"{out}/{name}")
                else:
                    os.rename(f"{out}/{name}", f"{staging}/{name}")
            raise ProvisionError(f"cannot move {host}'s tree into {out}: {exc}; nothing was changed") from None


@contextmanager
def _signals_held():
    """SIGINT and SIGTERM wait until the block is done (they are delivered right after it)."""
    held = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextmanager
def _terminable():
    """SIGTERM raises :class:`Terminated` inside the block, so that staging is cleaned up as for Ctrl-C."""
    import threading

    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def handler(signum, frame):
        if not got:  # once: a second SIGTERM must not break the clean-up the first one started
            got.append(signum)
            raise Terminated()

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield lambda: bool(got)
    except Terminated:
        pass  # cleaned up; the caller ends the process by the signal
    finally:
        signal.signal(signal.SIGTERM, old)
