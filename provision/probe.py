"""Gather a node's facts in one round trip: one probe script, one JSON answer."""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path
from typing import Any

from provision.facts import Facts
from provision.hosts import HostSpec, connect


class Unreachable(Exception):
    """The node could not be reached or the probe could not run; the text says why."""


@cache
def probe_source() -> str:
    return Path(__file__).with_name("probe_script.py").read_text()


def probe_program(operations: dict[str, dict[str, Any]]) -> str:
    """The probe's source with its operations appended as a Python literal (plain data only)."""
    return f"{probe_source()}\nmain({operations!r})\n"


def gather_facts(host: HostSpec, operations: dict[str, dict[str, Any]], *, timeout: float = 30) -> Facts:
    """Run the probe on ``host`` and return its facts, or raise :class:`Unreachable`."""
    try:
        conn = connect(host, timeout=timeout)
        # -I -S: the probe is stdlib only, so skip site and the user's environment (faster, predictable)
        python = sys.executable if host.is_local else "python3"
        result = conn.run("%s -I -S -c %s", python, probe_program(operations))
    except Exception as exc:  # any backend failure means the node is not usable from here
        raise Unreachable(_backend_reason(exc)) from None
    if result.rc == 127:
        raise Unreachable(f"python3 not found on the node: {result.stderr.strip()[:200]}")
    if result.rc != 0:
        raise Unreachable(f"probe exited {result.rc}: {result.stderr.strip()[-300:]}")
    try:
        answers = ast.literal_eval(result.stdout)  # data only: literal_eval evaluates no code
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise Unreachable(f"probe printed no answer: {result.stdout[:200]!r}") from None
    if not isinstance(answers, dict):
        raise Unreachable(f"probe printed no answer: {result.stdout[:200]!r}")
    return Facts(answers)


def _backend_reason(exc: Exception) -> str:
    # testinfra's ssh backend raises RuntimeError(CommandResult) when ssh exits 255
    arg = exc.args[0] if exc.args else exc
    stderr = getattr(arg, "stderr", None)
    if stderr:
        lines = [ln for ln in stderr.strip().splitlines() if ln and not ln.startswith("Warning: Permanently added")]
        return lines[-1] if lines else "ssh failed"
    return f"{type(exc).__name__}: {exc}"
