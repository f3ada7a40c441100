"""Which settings hold a secret, or name the file that holds one: their values never reach output.

>>> holds_secret("password"), holds_secret("key_file"), points_at_secret(("storage", 0, "key_file"))
(True, False, True)
>>> points_at_secret(("storage", 0, "secret_uuid"))
False
"""

from __future__ import annotations

import re

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
