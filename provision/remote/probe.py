"""Gather a node's facts in one round trip: one probe script, one JSON answer."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from provision.errors import Unreachable
from provision.facts import Facts
from provision.remote.hosts import HostSpec
from provision.remote.transport import connect

# What the node's Python runs (``-c``): the program comes on standard input, whatever its size (one
# argument may hold 128 KiB on Linux, and an apply's spec carries every rendered file). It runs as
# ``__main__`` with its own text as PROGRAM (the apply agent starts its guard from it).
BOOT = ('import sys;S=sys.stdin.buffer.read().decode("utf-8");'
        'exec(compile(S,"<provision>","exec"),{"__name__":"__main__","PROGRAM":S})')


# Where the probe looks for the node's own Python, first found: the system interpreter before whatever
# PATH puts first (a pyenv shim in root's PATH costs more than the probe), as Ansible's discovery does
PYTHONS = ("/usr/bin/python3", "/usr/libexec/platform-python", "python3")


def probe_command(python: tuple[str, ...] = ()) -> str:
    """The shell command that runs :data:`BOOT` (given as its ``%s`` argument) in ``sh -c``, whatever the
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
    """Run the probe on ``host`` and return its facts, or raise :class:`Unreachable` (also after
    ``timeout`` seconds): :func:`run_bundle`. On the local node it runs under the node's own Python
    too, as on any other node (not provision's, which only the apply agent needs)."""
    from provision.node import PROBE

    return Facts(run_bundle(host, PROBE, operations, timeout=timeout, local_python=local_node_python(host)))


def local_node_python(host: HostSpec) -> tuple[str, ...]:
    """The local node's Python for the probe: the inventory's interpreter, else the first of PYTHONS
    that exists (Debian's is also the faster to start: 7 ms against 9 for a pyenv build), else this one."""
    if host.python and " ".join(host.python) not in AUTO:
        return host.python
    return (next((p for p in PYTHONS if os.path.isabs(p) and os.access(p, os.X_OK)), sys.executable),)


# Where a node program goes instead of the host's transport, while an engine of another kind sets it (an
# Ansible action plugin: its connection, through the provision.compute.run module): program -> answer,
# or Unreachable. Set with :func:`through`.
_RUNNER: Any = None


class through:
    """``with through(runner):`` every node program runs as ``runner(program)`` (see :data:`_RUNNER`)."""

    def __init__(self, runner) -> None:
        self.runner = runner

    def __enter__(self):
        global _RUNNER
        self.saved, _RUNNER = _RUNNER, self.runner
        return self

    def __exit__(self, *exc) -> None:
        global _RUNNER
        _RUNNER = self.saved


# The sessions of a run, while provision.remote.session.sessions sets them: run_bundle's requests go there
_SESSIONS: Any = None


def run_bundle(host: HostSpec, names: tuple[str, ...], spec: Any, *, timeout: float,
               local_python: tuple[str, ...] = ()) -> dict:
    """What the node bundle ``names`` answers on ``host`` for ``spec`` (its last module's ``main``), or
    :class:`Unreachable`: within :class:`provision.remote.session.sessions`, a request to the node's
    session (one connection for the run); else a program of its own (:func:`run_program`). Bounded by
    ``timeout`` either way."""
    from provision.node import bundle

    if _RUNNER is None and _SESSIONS is not None and _SESSIONS.holds(host, names):
        return _SESSIONS.call(host, names, spec, timeout=timeout)
    return within(lambda: run_program(host, bundle(names, spec), timeout=timeout, local_python=local_python),
                  timeout=timeout, name=host.name)


def run_program(host: HostSpec, program: str, *, timeout: float = 30, local_python: tuple[str, ...] = ()) -> dict:
    """Run a stdlib-only Python ``program`` on ``host`` and return the JSON object it prints, or raise
    :class:`Unreachable` (the probe and the apply agent both run this way). The program goes on the
    node's standard input (:data:`BOOT`). On the local node it runs under ``local_python`` (by default
    this interpreter), as an argument vector: no shell. Within :class:`through`, its runner runs it."""
    if _RUNNER is not None:
        return _RUNNER(program)
    if host.problem:
        raise Unreachable(host.problem)
    data = program.encode("utf-8")
    try:
        # -I -S: the program is stdlib only, so skip site and the user's environment (faster, predictable)
        if host.is_local:
            result = _run_here([*(local_python or (sys.executable,)), "-I", "-S", "-c", BOOT], timeout=timeout,
                               data=data)
        else:
            backend = connect(host, timeout=timeout).backend
            result = backend.run_input(backend.get_command(probe_command(host.python), BOOT), data)
    except Unreachable:
        raise
    except Exception as exc:  # any backend failure means the node is not usable from here
        raise Unreachable(_backend_reason(exc)) from None
    if result.rc != 0:
        raise Unreachable(exit_reason(host, result.rc, result.stderr))
    return answer_of(result.stdout)


def exit_reason(host: HostSpec, rc: int, stderr: str) -> str:
    """Why a node program that exited ``rc`` gave no answer: no Python there (127), else the last lines
    of its standard error (a traceback's last lines say why)."""
    if rc == 127:
        looked = " ".join(host.python) if " ".join(host.python) not in ("", *AUTO) else ", ".join(PYTHONS[:-1]) + " or python3 in PATH"
        return f"no Python on the node (looked for {looked}): {brief(stderr, 200)}"
    last = stderr.strip().splitlines()[-3:]
    return f"probe exited {rc}: {brief(chr(10).join(last))}"


def answer_of(stdout: str) -> dict:
    """The JSON object a node program printed (data only), or :class:`Unreachable`."""
    try:
        answers = json.loads(stdout)
    except (ValueError, RecursionError):
        raise Unreachable(no_answer(stdout)) from None
    if not isinstance(answers, dict):
        raise Unreachable(no_answer(stdout))
    return answers


def no_answer(stdout: str) -> str:
    """What a node program printed instead of its answer (a login banner, say), shown briefly."""
    return f"probe printed no answer: {brief(repr(stdout[:200]))}"


def _run_here(argv: list[str], *, timeout: float, data: bytes = b""):
    """``argv`` on this machine with ``data`` on its standard input, as testinfra's result: ``rc``,
    ``stdout``, ``stderr``."""
    import subprocess
    from types import SimpleNamespace

    from provision.parallel import run_child

    try:
        done = run_child(argv, data=data, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Unreachable(f"no answer within {timeout:g} s") from None
    except FileNotFoundError as exc:
        return SimpleNamespace(rc=127, stdout="", stderr=str(exc))
    return SimpleNamespace(rc=done.returncode, stdout=done.stdout.decode("utf-8", "replace"),
                           stderr=done.stderr.decode("utf-8", "replace"))


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
    """Why the connection failed, in a line or two, the reason first: ssh's last words, never a dump of
    the command it was given (which held the whole program before it went on standard input)."""
    # testinfra's ssh backend raises RuntimeError(CommandResult) when ssh exits 255
    arg = exc.args[0] if exc.args else exc
    if hasattr(arg, "stderr") and hasattr(arg, "rc"):
        return ssh_said(arg.stderr or "", arg.rc)
    return brief(f"{type(exc).__name__}: {exc}")


def ssh_said(stderr: str, rc: int) -> str:
    """Why ssh failed (it exited 255): its last line on standard error, its host-key notices aside."""
    lines = [ln for ln in stderr.strip().splitlines() if ln and not ln.startswith("Warning: Permanently added")]
    return brief(lines[-1]) if lines else f"ssh exited {rc} and said nothing on its standard error"


def brief(text: str, limit: int = 300) -> str:
    """``text`` cut to its first ``limit`` characters and three lines, saying so."""
    lines = text.strip().splitlines() or [""]
    cut = "\n".join(lines[:3])
    if len(cut) > limit or len(lines) > 3:
        return cut[:limit].rstrip() + " [...]"
    return cut
