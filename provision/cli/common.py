"""What every command shares: turning user errors into a message and exit code 2."""

from __future__ import annotations

import functools
import sys
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from provision.errors import ProvisionError


class Output(str, Enum):
    table = "table"
    json = "json"
    junit = "junit"


class ReportFormat(str, Enum):
    """The formats of a fleet report (preflight, verify, apply, smoke)."""

    table = "table"
    json = "json"
    junit = "junit"
    html = "html"


ReportFileOpt = Annotated[
    Optional[Path],
    typer.Option("--report", metavar="FILE", help="write the report there (atomically) instead of to standard output"),
]


def emit(text: str, report: Path | None) -> None:
    """The report on standard output, or written into ``report`` (a new file beside it, then renamed)."""
    if report is None:
        typer.echo(text, nl=False)
        return
    import os
    import tempfile

    from provision.errors import InputError

    folder = report.parent if str(report.parent) else Path(".")
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{report.name}.", dir=folder)
    except OSError as exc:
        raise InputError(f"--report {report}: cannot write there: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, report)
    except BaseException as exc:
        os.unlink(temporary)
        if isinstance(exc, OSError):
            raise InputError(f"--report {report}: cannot write there: {exc.strerror}") from None
        raise


def user_errors(fn):
    """Run a command so that a :class:`ProvisionError` prints ``provision: error: ...`` and exits
    with its code (2 for an :class:`InputError`, 1 for a failure on a node) instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ProvisionError as exc:
            from provision.report.text import terminal_text

            typer.echo(f"provision: error: {terminal_text(exc)}", err=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


class Progress:
    """A progress bar on stderr, shown once :meth:`start` knows there is more than one node and stderr
    is a terminal; :meth:`advance` as each node is done (the pipeline's ``on_start`` and ``on_done``)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None
        self.task: Any = None

    def start(self, total: int) -> None:
        if total < 2 or not sys.stderr.isatty():
            return
        from rich.console import Console
        from rich.progress import Progress as Bar

        self.bar = Bar(console=Console(stderr=True), transient=True)
        self.bar.start()
        self.task = self.bar.add_task(self.label, total=total)

    def advance(self, _done=None) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@contextmanager
def progress(label: str):
    bar = Progress(label)
    try:
        yield bar
    finally:
        bar.close()


def warn(message: str) -> None:
    """An inventory's warning, on stderr."""
    from provision.report.text import terminal_text

    typer.echo(f"provision: warning: {terminal_text(message)}", err=True)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


INVENTORY_HELP = "Ansible inventory: anything ansible -i takes (file, folder, script, plugin config)"
class Engine(str, Enum):
    """Who reaches the nodes: provision's own SSH engine, or Ansible (the provision.compute collection)."""

    direct = "direct"
    ansible = "ansible"


EngineOpt = Annotated[Engine, typer.Option(
    "--engine", help="direct: provision's own SSH; ansible: ansible-playbook with the provision.compute "
                     "collection, the same report and exit codes")]


InventoryOpt = Annotated[
    Optional[str],
    typer.Option("--inventory", "-i", metavar="INVENTORY", help=INVENTORY_HELP),
]
LimitOpt = Annotated[
    Optional[str],
    typer.Option("--limit", "-l", metavar="PATTERN", help="Ansible host pattern: names, globs, a:b, a:!b, a:&b"),
]
HostOpt = Annotated[
    list[str], typer.Option("--host", "-H", metavar="SPEC", help="testinfra host spec (instead of -i); repeatable")
]


def select(*, inventory, limit, hosts=None):
    """The nodes to act on; inventory warnings go to stderr."""
    from provision import pipeline

    return pipeline.select(inventory=inventory, limit=limit, hosts=hosts or (), warn=warn)


def command_group(help: str) -> typer.Typer:
    """A group of subcommands (guest, inventory, canary) with the main app's plain help (no rich help:
    it imports rich.markdown on every --help)."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None, add_completion=False)


def seconds_option(*names: str, help: str, min: float = 0.1, max: float = 86400):
    """A float option in seconds, shown as SECONDS: within [min, max], NaN refused."""
    return typer.Option(*names, min=min, max=max, callback=seconds, metavar="SECONDS", help=help)


def forks_option(help: str = "nodes acted on at once"):
    return typer.Option(min=1, metavar="N", help=help)


def seconds(value: float) -> float:
    """A float option given in seconds: click's range checks let NaN through (every comparison with it
    is false), which would reach the waits as an error deep inside."""
    if value != value:
        raise typer.BadParameter("must be a number of seconds, not NaN")
    return value
