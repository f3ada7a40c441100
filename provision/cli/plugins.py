"""``provision plugins`` and ``provision checks``: what is loaded and what it checks."""

from __future__ import annotations

import typer

from provision.cli.common import user_errors


@user_errors
def plugins_cli() -> None:
    """List the loaded plugins and the hooks each implements."""
    from provision.plugins import default_hooks

    for name, hooks in default_hooks().plugin_hooks():
        typer.echo(f"{name}: {', '.join(hooks) or '(no hooks)'}")


@user_errors
def checks_cli() -> None:
    """List every check id with one line each."""
    from provision.plugins import default_hooks

    catalog = default_hooks().check_catalog
    width = max(map(len, catalog), default=0)
    for check_id, summary in catalog.items():
        typer.echo(f"{check_id:<{width}}  {summary}")
