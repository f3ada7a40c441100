"""Field types the plugins' settings schemas share (pydantic): names and paths as the files they are
written into can take them, so that no value can end a line, a quoted string or a path early."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def _libvirt_name(value: str) -> str:
    if len(value) > 64 or not _NAME.fullmatch(value):
        raise ValueError("must be 1-64 letters, digits, '_', '.', '+' or '-', starting with a letter or digit")
    return value


def _conf_word(value: str) -> str:
    if len(value) > 128 or not _NAME.fullmatch(value):
        raise ValueError("must be letters, digits, '_', '.', '+' or '-', starting with a letter or digit "
                         "(it is written bare into nova.conf or ceph.conf)")
    return value


def _absolute(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("must be an absolute path")
    if not value.isprintable():  # a new line, a tab, an escape: no file's grammar takes them in a path
        raise ValueError("must be an absolute path without control characters")
    if value != "/" and value.endswith("/"):
        raise ValueError("must be an absolute path without a trailing '/'")
    if any(part in (".", "..") for part in value.split("/")):
        raise ValueError("must be an absolute path without '.' or '..' parts")
    if len(value.encode()) > 4095 or any(len(part.encode()) > 255 for part in value.split("/")):
        raise ValueError("must be a path a filesystem can hold: at most 255 bytes a name and 4,095 in all")
    return value


# folders a pool must never mount over or take as its target: the system's own, and provision's state
SYSTEM_FOLDERS = ("/etc", "/usr", "/boot", "/proc", "/sys", "/dev", "/root", "/bin", "/sbin", "/lib", "/lib32",
                  "/lib64", "/libx32", "/var/lib/provision")


def folder_target_problem(path: str) -> str | None:
    """Why ``path`` cannot be a folder a pool mounts on or takes over, or None.

    >>> folder_target_problem("/etc/nfs"), folder_target_problem("/var/lib/nova/instances")
    ('must not be inside /etc, a system folder', None)
    """
    if path == "/":
        return "must not be '/', the root folder"
    inside = next((f for f in SYSTEM_FOLDERS if path == f or path.startswith(f + "/")), None)
    if inside:
        return f"must not be inside {inside}, a system folder" if path != inside else f"must not be {inside}, a system folder"
    return None


def _folder_target(value: str) -> str:
    value = _absolute(value)
    if problem := folder_target_problem(value):
        raise ValueError(problem)
    return value


def nested_folders(paths: list[str]) -> list[tuple[int, int]]:
    """Pairs (i, j) where folder ``paths[j]`` is ``paths[i]`` or lies inside it (j != i).

    >>> nested_folders(["/srv/a", "/srv/ab", "/srv/a/b"])
    [(0, 2)]
    """
    return [(i, j) for i, outer in enumerate(paths) for j, inner in enumerate(paths)
            if i != j and (inner == outer and i < j or inner.startswith(outer.rstrip("/") + "/"))]


def _conf_path(value: str) -> str:
    value = _absolute(value)
    if any(c in value for c in '"\\'):
        raise ValueError("must not contain '\"' or '\\' (it is written into a quoted string of libvirtd.conf)")
    return value


def _file_path(value: str) -> str:
    value = _absolute(value)
    if value == "/":
        raise ValueError("must be the absolute path of a file, not '/'")
    return value


def _ini_path(value: str) -> str:
    value = _absolute(value)
    if any(c in value for c in "#;") or any(c.isspace() for c in value):
        raise ValueError("must not contain '#', ';' or spaces (it is written bare into ceph.conf, where they "
                         "start a comment or end the value)")
    return value


def _text(value: str) -> str:
    if not value or len(value) > 255 or not value.isprintable():
        raise ValueError("must be 1-255 printable characters, on one line")
    return value


LibvirtName = Annotated[str, AfterValidator(_libvirt_name)]  # a libvirt pool or network
ConfWord = Annotated[str, AfterValidator(_conf_word)]  # a Ceph user or pool, a CPU model
AbsPath = Annotated[str, AfterValidator(_absolute)]
ConfPath = Annotated[str, AfterValidator(_conf_path)]
FolderTarget = Annotated[str, AfterValidator(_folder_target)]  # a folder a pool mounts on: no system folder
FilePath = Annotated[str, AfterValidator(_file_path)]  # a file provision writes
IniPath = Annotated[str, AfterValidator(_ini_path)]  # a path written bare into an INI file (ceph.conf)
Text = Annotated[str, AfterValidator(_text)]  # a free word of one line (a CHAP user name), XML-escaped where written
