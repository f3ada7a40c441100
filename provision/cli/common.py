"""What every command shares: turning user errors into a message and exit code 2."""

from __future__ import annotations

import functools
import sys
from enum import Enum

import typer

from provision.errors import InputError


class Output(str, Enum):
    table = "table"
    json = "json"
    junit = "junit"


def user_errors(fn):
    """Run a command so that an :class:`InputError` prints ``provision: error: ...`` and exits 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            typer.echo(f"provision: error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
