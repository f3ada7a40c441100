"""What runs on nodes: the probe, the remedies and the apply agent, each a few modules of Python 3.6 and
the standard library only, sent to a node as a bundle (as Ansible ships a module with its module_utils).

:func:`bundle` makes the program that ``python3 -c BOOT`` reads on the node's standard input
(:data:`provision.remote.probe.BOOT`): a small loader, then each module's source, registered as
``provision_node.<name>`` in the order given (a module imports only those before it, relatively:
``from .state import ...``), then ``main(spec)`` of the last. The same modules are importable here as
``provision.node.<name>``, so their pure parts are unit-tested without a node.

A run that talks to a node more than once (apply: probe, remedies, probe again, agent, verify) holds one
connection to it instead: the :data:`SESSION` bundle (the loader and :mod:`provision.node.session`),
which then receives each bundle's modules the first time a request needs them
(:mod:`provision.remote.session`).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

PACKAGE = "provision_node"
FOLDER = Path(__file__).parent
COMMON = ("common",)  # what every bundle shares, first in each: files, locks, programs, answers
PROBE = ("common", "probe_files", "probe_runs", "probe_devices", "probe")  # the probe's modules, each before those that import it
AGENT = ("common", "state", "files", "objects", "steps", "undo", "guard", "agent")  # the apply agent's
REMEDY = ("common", "remedy")  # what apply installs, loads and starts before it configures the node
SESSION = ("session",)  # one connection that serves the others' requests (provision.remote.session)
BUNDLES = (PROBE, AGENT, REMEDY, SESSION)

# The loader, run first in the program's own namespace (where BOOT put the program's text as PROGRAM).
# Every module it registers is kept in SOURCES, in order: the apply agent's guard runs them again.
LOADER = '''import sys
import types


def _bundle(parts):
    package = sys.modules.get("%s")
    if package is None:
        package = types.ModuleType("%s")
        package.__path__ = []
        package.PROGRAM = globals().get("PROGRAM", "")
        package.SOURCES = []
        package.load = _bundle
        sys.modules[package.__name__] = package
    module = None
    for name, source in parts:
        module = types.ModuleType(package.__name__ + "." + name)
        module.__package__ = package.__name__
        sys.modules[module.__name__] = module
        setattr(package, name, module)
        exec(compile(source, "<%%s>" %% module.__name__, "exec"), module.__dict__)
        package.SOURCES.append((name, source))
    return module
''' % (PACKAGE, PACKAGE)


@cache
def sources(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((name, (FOLDER / f"{name}.py").read_text()) for name in names)


def bundle(names: tuple[str, ...], spec: Any) -> str:
    """The program for a node: the loader, the modules ``names`` (the last one's ``main`` is called),
    then ``main(spec)`` alone on the last line (the agent's guard reruns the program without it)."""
    return f"{LOADER}\nmain = _bundle({sources(names)!r}).main\nmain({spec!r})\n"
