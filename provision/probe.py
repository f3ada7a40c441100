"""Gather a node's facts in one round trip: one probe script, one JSON answer."""

from __future__ import annotations

import json
import os
import sys
from functools import cache
from pathlib import Path
from typing import Any

from provision.errors import Unreachable  # noqa: F401  (re-exported: the one unreachable-node error)
from provision.facts import Facts
from provision.hosts import HostSpec, connect


@cache
def probe_source() -> str:
    return Path(__file__).with_name("probe_script.py").read_text()


def probe_program(operations: dict[str, dict[str, Any]]) -> str:
    """The probe's source with its operations appended as a Python literal (plain data only)."""
    return f"{probe_source()}\nmain({operations!r})\n"


# Where the probe looks for the node's own Python, first found: the system interpreter before whatever
# PATH puts first (a pyenv shim in root's PATH costs more than the probe), as Ansible's discovery does
PYTHONS = ("/usr/bin/python3", "/usr/libexec/platform-python", "python3")


def probe_command(python: tuple[str, ...] = ()) -> str:
    """The shell command that runs the probe (given as its ``%s`` argument) in ``sh -c``, whatever the
    login shell is: with ``python``, a command line as the inventory's ansible_python_interpreter
    gives it, else with the first of PYTHONS the node has. Exit 127 when there is none."""
    from shlex import quote

    if python and " ".join(python) not in AUTO:
        script = f'{" ".join(quote(w) for w in python)} -I -S -c "$0"'
    else:
        candidates = " ".join(quote(p) for p in PYTHONS)
        script = f'for p in {candidates}; do if command -v "$p" >/dev/null 2>&1; then exec "$p" -I -S -c "$0"; fi; done; exit 127'
    return f"sh -c {quote(script).replace('%', '%%')} %s"


AUTO = ("auto", "auto_silent", "auto_legacy", "auto_legacy_silent")  # Ansible's words for "discover it"


def gather_facts(host: HostSpec, operations: dict[str, dict[str, Any]], *, timeout: float = 30) -> Facts:
    """Run the probe on ``host`` and return its facts, or raise :class:`Unreachable`. On the local node
    it runs under the node's own Python too, as on any other node (not provision's, which only the
    apply agent needs)."""
    return Facts(run_program(host, probe_program(operations), timeout=timeout, local_python=local_node_python(host)))


def local_node_python(host: HostSpec) -> tuple[str, ...]:
    """The local node's Python for the probe: the inventory's interpreter, else the first of PYTHONS
    that exists (Debian's is also the faster to start: 7 ms against 9 for a pyenv build), else this one."""
    if host.python and " ".join(host.python) not in AUTO:
        return host.python
    return (next((p for p in PYTHONS if os.path.isabs(p) and os.access(p, os.X_OK)), sys.executable),)


def run_program(host: HostSpec, program: str, *, timeout: float = 30, local_python: tuple[str, ...] = ()) -> dict:
    """Run a stdlib-only Python ``program`` on ``host`` and return the JSON object it prints, or raise
    :class:`Unreachable` (the probe and the apply agent both run this way). On the local node it runs
    under ``local_python`` (by default this interpreter), as an argument vector: no shell."""
    try:
        # -I -S: the program is stdlib only, so skip site and the user's environment (faster, predictable)
        if host.is_local:
            result = _run_here([*(local_python or (sys.executable,)), "-I", "-S", "-c", program], timeout=timeout)
        else:
            result = connect(host, timeout=timeout).run(probe_command(host.python), program)
    except Unreachable:
        raise
    except Exception as exc:  # any backend failure means the node is not usable from here
        raise Unreachable(_backend_reason(exc)) from None
    if result.rc == 127:
        looked = " ".join(host.python) if " ".join(host.python) not in ("", *AUTO) else ", ".join(PYTHONS[:-1]) + " or python3 in PATH"
        raise Unreachable(f"no Python on the node (looked for {looked}): {result.stderr.strip()[:200]}")
    if result.rc != 0:
        raise Unreachable(f"probe exited {result.rc}: {result.stderr.strip()[-300:]}")
    try:
        answers = json.loads(result.stdout)  # data only
    except (ValueError, RecursionError):
        raise Unreachable(f"probe printed no answer: {result.stdout[:200]!r}") from None
    if not isinstance(answers, dict):
        raise Unreachable(f"probe printed no answer: {result.stdout[:200]!r}")
    return answers


def _run_here(argv: list[str], *, timeout: float):
    """``argv`` on this machine, as testinfra's result: ``rc``, ``stdout``, ``stderr``."""
    import subprocess
    from types import SimpleNamespace

    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                              encoding="utf-8", errors="replace")
    except subprocess.TimeoutExpired:
        raise Unreachable(f"no answer within {timeout:g} s") from None
    except FileNotFoundError as exc:
        return SimpleNamespace(rc=127, stdout="", stderr=str(exc))
    return SimpleNamespace(rc=done.returncode, stdout=done.stdout, stderr=done.stderr)


def gather_facts_within(host: HostSpec, operations: dict[str, dict[str, Any]], *, timeout: float) -> Facts:
    """:func:`gather_facts`, bounded by ``timeout``."""
    return within(lambda: gather_facts(host, operations, timeout=timeout), timeout=timeout, name=host.name)


def within(call, *, timeout: float, name: str):
    """``call()``, bounded by ``timeout``: a node hung mid-handshake (or a read that blocks) cannot hold
    the run, or its exit, any longer: the call runs in a daemon thread. :class:`Unreachable` when late."""
    import threading

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except Unreachable as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run, name=f"node {name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise Unreachable(f"no answer within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _backend_reason(exc: Exception) -> str:
    # testinfra's ssh backend raises RuntimeError(CommandResult) when ssh exits 255
    arg = exc.args[0] if exc.args else exc
    stderr = getattr(arg, "stderr", None)
    if stderr:
        lines = [ln for ln in stderr.strip().splitlines() if ln and not ln.startswith("Warning: Permanently added")]
        return lines[-1] if lines else "ssh failed"
    return f"{type(exc).__name__}: {exc}"
