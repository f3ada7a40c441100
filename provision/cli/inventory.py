"""``provision inventory validate|hosts|show``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from provision.cli.common import INVENTORY_HELP, LimitOpt, Output, command_group, select, user_errors

app = command_group("Read, check and query Ansible-style inventories.")
RequiredInventory = Annotated[str, typer.Option("--inventory", "-i", metavar="INVENTORY", help=INVENTORY_HELP)]


@app.command("validate")
@user_errors
def validate_cli(inventory: RequiredInventory) -> None:
    """Check the inventory: YAML, settings schema, connections. Exit 2 with every problem."""
    nodes = select(inventory=inventory, limit=None)
    typer.echo(f"{inventory}: valid, {len(nodes)} hosts")


@app.command("hosts")
@user_errors
def hosts_cli(inventory: RequiredInventory, limit: LimitOpt = None,
              output: Annotated[Output, typer.Option("--output", "-o")] = Output.table) -> None:
    """List the hosts a --limit pattern selects."""
    names = [n.name for n in select(inventory=inventory, limit=limit)]
    typer.echo(json.dumps({"hosts": names}) if output == Output.json else "\n".join(names))


@app.command("show")
@user_errors
def show_cli(host: str, inventory: RequiredInventory,
             output: Annotated[Output, typer.Option("--output", "-o")] = Output.table) -> None:
    """Show one host: its connection, groups and merged provision settings (secrets redacted)."""
    import yaml

    from provision.inventory.select import describe_host
    from provision.plugins import default_hooks

    data = describe_host(inventory=inventory, host=host, hooks=default_hooks())
    typer.echo(json.dumps(data, indent=2) if output == Output.json else yaml.safe_dump(data, sort_keys=False), nl=False)


