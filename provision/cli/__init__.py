"""The ``provision`` command: one Typer app per command group, composed here."""

from __future__ import annotations

import typer

from provision.cli import guest as guest_cli
from provision.cli import inventory as inventory_cli
from provision.cli import plugins as plugins_cli
from provision.cli import preflight as preflight_cli
from provision.cli import render as render_cli
from provision.cli import smoke as smoke_cli

app = typer.Typer(
    name="provision",
    help="Preflight and provision OpenStack compute nodes: decide KVM or software QEMU, check what will break.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("preflight")(preflight_cli.preflight_cli)
app.command("render")(render_cli.render_cli)
app.command("plugins")(plugins_cli.plugins_cli)
app.command("checks")(plugins_cli.checks_cli)
app.add_typer(inventory_cli.app, name="inventory")
app.add_typer(guest_cli.app, name="guest")
app.command("smoke")(smoke_cli.smoke_cli)
app.add_typer(smoke_cli.canary_app, name="canary")


def main() -> None:
    app()
