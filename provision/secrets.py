"""Which settings hold a secret, or name the file that holds one: their values never reach output.

>>> holds_secret("password"), holds_secret("key_file"), points_at_secret(("storage", 0, "key_file"))
(True, False, True)
>>> points_at_secret(("storage", 0, "secret_uuid"))
False
"""

from __future__ import annotations

import re

from provision.errors import field

_NAMED = "password|passwd|secret|token"
_WORDS = rf"({_NAMED}|(^|_)key)"
# a key whose value is the secret itself: redacted wherever settings are shown
SECRET_NAME = re.compile(_WORDS + "$", re.I)
# ... or the path of a file holding one: a secret pasted there by mistake is not echoed in errors
SECRET_FILE = re.compile(_WORDS + "_file$", re.I)
REDACTED = "<redacted>"
# a diff line setting such a name inline, as in "key = ..." or "auth_password: ...": the node's
# current files may hold secrets (a keyring, a CHAP password), and a diff must not print them
SECRET_LINE = re.compile(rf"^([-+ ]\s*[\w.-]*?({_NAMED}|key)\s*[=:]\s*)\S.*$", re.I)


def holds_secret(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def points_at_secret(path: tuple) -> bool:
    """Whether the settings field at ``path`` holds a secret or names a file holding one."""
    names = [p for p in path if isinstance(p, str)]
    return bool(names) and (holds_secret(names[-1]) or bool(SECRET_FILE.search(names[-1])))


def redact_line(line: str) -> str:
    """A diff line with a secret setting's value replaced by <redacted>."""
    return SECRET_LINE.sub(rf"\1{REDACTED}", line.rstrip("\n")) + ("\n" if line.endswith("\n") else "")


def setting_paths(value, path: tuple = ()):
    """(settings path, value) of every string that is an absolute path: the values that may name a file."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from setting_paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from setting_paths(v, (*path, i))
    elif isinstance(value, str) and value.startswith("/"):
        yield path, value


def secret_files(settings: dict, paths: list | None = None) -> dict[str, tuple]:
    """{file path: settings path} of every file the settings name as holding a secret (``key_file``,
    ``password_file``): the files whose text no output may show.

    >>> secret_files({"storage": [{"type": "rbd", "key_file": "/etc/ceph/k"}]})
    {'/etc/ceph/k': ('storage', 0, 'key_file')}
    """
    found: dict[str, tuple] = {}
    for path, value in setting_paths(settings) if paths is None else paths:
        if points_at_secret(path):
            found.setdefault(value, path)
    return found


def secret_file_problems(settings: dict) -> list[tuple[tuple, str]]:
    """A setting that is not a secret's but names a secret file (a ceph_conf equal to the key_file):
    provision would write or show that file. ``[(path, message)]``."""
    paths = list(setting_paths(settings))
    secrets = secret_files(settings, paths)
    return [(path, f"names the secret file of {field(secrets[value])}; a secret file is never written or shown")
            for path, value in paths if value in secrets and not points_at_secret(path)]
