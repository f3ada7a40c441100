"""Text from nodes and inventories, made safe for a terminal: a control character (an escape that clears
the screen, sets a window title or recolours what follows, a carriage return that overwrites a line) or
a bidirectional override (which reorders what is shown) is written as Python writes it in a string
literal (``\\x1b``, ``\\u202e``), so the operator sees it and the terminal does not act on it. New lines
and tabs stay.

>>> terminal_text("user = \\x1b[2Jroot\\r\\n")
'user = \\\\x1b[2Jroot\\\\x0d\\n'
"""

from __future__ import annotations

import re

# C0 controls but tab and new line, DEL, C1 controls; bidirectional marks, embeddings, overrides, isolates
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_text(value: object) -> str:
    """``value`` as text a terminal shows and never acts on."""
    text = str(value)
    return _UNSAFE.sub(_escaped, text) if _UNSAFE.search(text) else text
