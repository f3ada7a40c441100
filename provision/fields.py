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
    return value


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
FilePath = Annotated[str, AfterValidator(_file_path)]  # a file provision writes
IniPath = Annotated[str, AfterValidator(_ini_path)]  # a path written bare into an INI file (ceph.conf)
Text = Annotated[str, AfterValidator(_text)]  # a free word of one line (a CHAP user name), XML-escaped where written
