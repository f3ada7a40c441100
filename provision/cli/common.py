"""What every command shares: turning user errors into a message and exit code 2."""

from __future__ import annotations

import functools
import sys
from contextlib import contextmanager
from enum import Enum
from typing import Annotated, Optional

import typer

from provision.errors import ProvisionError


class Output(str, Enum):
    table = "table"
    json = "json"
    junit = "junit"


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


@contextmanager
def progress(total: int, label: str):
    """A progress bar on stderr when it is a terminal and there is more than one node."""
    if total < 2 or not sys.stderr.isatty():
        yield lambda done: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.advance(task)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


INVENTORY_HELP = "Ansible inventory: anything ansible -i takes (file, folder, script, plugin config)"
InventoryOpt = Annotated[
    Optional[str],  # noqa: UP007 (Typer reads the annotation)
    typer.Option("--inventory", "-i", metavar="INVENTORY", help=INVENTORY_HELP),
]
LimitOpt = Annotated[
    Optional[str],  # noqa: UP007
    typer.Option("--limit", "-l", metavar="PATTERN", help="Ansible host pattern: names, globs, a:b, a:!b, a:&b"),
]
HostOpt = Annotated[
    list[str], typer.Option("--host", "-H", metavar="SPEC", help="testinfra host spec (instead of -i); repeatable")
]


def select(*, inventory, limit, hosts=None):
    """The nodes to act on; inventory warnings go to stderr."""
    from provision.inventory.select import select_nodes
    from provision.plugins import default_hooks
    from provision.report.text import terminal_text

    selection = select_nodes(inventory=inventory, limit=limit, hosts=hosts, hooks=default_hooks())
    for warning in selection.warnings:
        typer.echo(f"provision: warning: {terminal_text(warning)}", err=True)
    return selection


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
