"""``provision render``: write each node's configuration tree, or diff it against the node."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from provision.cli.common import InventoryOpt, LimitOpt, forks_option, seconds_option, user_errors, warn


@user_errors
def render_cli(
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", metavar="DIR", help="folder for DIR/<host>/...")] = None,
    diff: Annotated[bool, typer.Option("--diff", help="print a unified diff against the files on each node")] = False,
    forks: Annotated[int, forks_option()] = 8,
    timeout: Annotated[float, seconds_option(
        help="seconds a node may take (--diff, auto), or to wait for another render into --out")] = 30,
) -> None:
    """Render hypervisor, storage and network configuration for each node."""
    from provision import pipeline

    if out is None and not diff:
        raise typer.BadParameter("give --out DIR, or --diff", param_hint="--out")
    done = pipeline.render(inventory=inventory, limit=limit, out=out, diff=diff, forks=forks, timeout=timeout,
                           warn=warn)
    if out is not None:
        typer.echo(f"rendered {done.written} files for {len(done.nodes)} hosts into {out}")
    if diff:
        typer.echo(done.diff, nl=False)
