"""The settings of a node without an inventory: every plugin's defaults, kept between runs.

Filling them means importing pydantic and building the settings model from every plugin's part,
about 85 ms of CPU: most of a plain ``provision preflight``. They depend only on the code that
computed them, so they are kept in one JSON file per interpreter and set of plugins, and used again
while that code is unchanged, checked the way Python checks a ``.pyc`` against its source: the
size and modification time of every module file that was loaded when they were computed (pydantic,
provision, each plugin and what it imported). Any change, or any doubt, means they are computed
afresh; a miss costs nothing but the write.

Where: ``$PROVISION_CACHE_DIR``, else ``$XDG_CACHE_HOME/provision``, else ``~/.cache/provision``.
``PROVISION_CACHE_DIR=off`` turns it off. A file is only read from, and written to, a folder owned
by the user running provision and writable by no one else, and that folder is only made inside one
of the user's own; a file that is not the user's own, or not valid, is ignored (and replaced).
A temporary file of a write killed midway is removed by a later write once ten minutes old;
nothing else in the folder is touched.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provision.remote.hosts import Node

CACHE_ENV = "PROVISION_CACHE_DIR"
FORMAT = 1  # bumped when the file's layout changes


def settings_defaults(hooks) -> dict[str, Any]:
    """The ``provision`` settings with every default filled in, as plain data (``model_dump(mode="json")``
    of the loaded plugins' settings model), from the cache when its code is unchanged."""
    folder = cache_folder()
    which, key = _key(hooks)
    # one file per interpreter and set of plugins, whatever the import path (python -m from any folder)
    path = os.path.join(folder, f"settings-defaults-{_crc(which):08x}.json") if folder else None
    if path:
        cached = _read(path, key)
        if cached is not None:
            return cached
    defaults = hooks.settings_model().model_dump(mode="json")
    if path and folder:
        _write(folder, path, {"format": FORMAT, "key": key, "modules": _loaded_module_files(), "defaults": defaults})
    return defaults


def cache_folder() -> str | None:
    """Where the cache lives, or None when it is off or no home is known."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen:
        return None if chosen == "off" else chosen
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = xdg if os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".cache")  # XDG: relative is ignored
    return os.path.join(base, "provision") if os.path.isabs(base) else None


def _key(hooks) -> tuple[str, str]:
    """What the defaults were computed with, besides the module files: the interpreter and the plugins
    loaded, by name and file, in order (which file); and with them the import path (the whole key)."""
    plugins = [(name, getattr(plugin, "__file__", None) or getattr(sys.modules.get(type(plugin).__module__), "__file__", None)
                or repr(plugin)) for name, plugin in hooks.pm.list_name_plugin()]
    which = json.dumps([FORMAT, sys.version, sys.executable, plugins])
    return which, json.dumps([which, sys.path])


def _crc(text: str) -> int:
    from zlib import crc32

    return crc32(text.encode())


def _loaded_module_files() -> list[tuple[str, int, int]]:
    """(file, size, mtime_ns) of every module loaded now that comes from a file."""
    seen = []
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str):
            try:
                st = os.stat(file)
            except OSError:
                continue
            seen.append((file, st.st_size, st.st_mtime_ns))
    return sorted(set(seen))


def _private_folder(folder: str) -> bool:
    """The folder is a real directory of this user's, writable by no one else."""
    try:
        st = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


TEMPORARY_PREFIX = ".settings-defaults-"
ABANDONED_AFTER = 600  # seconds: a temporary file this old was left by a run killed while writing


def _remove_abandoned(folder: str) -> None:
    """Remove our own temporary files that a killed run left (never one another run is writing now)."""
    import time

    for entry in os.scandir(folder):
        if entry.name.startswith(TEMPORARY_PREFIX) and entry.name.endswith(".tmp") and entry.is_file(follow_symlinks=False):
            try:
                if time.time() - entry.stat(follow_symlinks=False).st_mtime > ABANDONED_AFTER:
                    os.unlink(entry.path)
            except OSError:
                continue


def _ours_to_make(folder: str) -> bool:
    """Making ``folder`` puts nothing into another user's folder: its nearest existing parent is ours
    (root running with a user's HOME, as sudo keeps it, makes nothing in that home)."""
    parent = os.path.dirname(os.path.abspath(folder))
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    try:
        return os.stat(parent).st_uid == os.geteuid()
    except OSError:
        return False


def _read(path: str, key: str) -> dict[str, Any] | None:
    if not _private_folder(os.path.dirname(path)):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
                return None
            entry = json.loads(fh.read())
    except (OSError, ValueError):
        return None
    try:
        if entry["format"] != FORMAT or entry["key"] != key or not isinstance(entry["defaults"], dict):
            return None
        for file, size, mtime_ns in entry["modules"]:
            st = os.stat(file)
            if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
                return None
    except (OSError, KeyError, TypeError, ValueError):
        return None
    return entry["defaults"]


def _write(folder: str, path: str, entry: dict[str, Any]) -> None:
    """Atomically (a reader sees the old file or the new one), and only into a private folder of ours;
    a cache that cannot be written is no cache, never an error."""
    import tempfile

    try:
        if not os.path.isdir(folder) and not _ours_to_make(folder):
            return
        os.makedirs(folder, mode=0o700, exist_ok=True)
        if not _private_folder(folder):
            return
        _remove_abandoned(folder)
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=TEMPORARY_PREFIX, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(entry, fh)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError:
        return


def with_defaults(nodes: list[Node], *, hooks) -> list[Node]:
    """The nodes, those without settings (no inventory) given every default."""
    if all(n.settings for n in nodes):
        return nodes
    defaults = settings_defaults(hooks)
    return [n if n.settings else dataclasses.replace(n, settings=defaults) for n in nodes]
