"""``provision render``: write each node's configuration tree, or diff it against the node."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from provision.cli.common import InventoryOpt, LimitOpt, forks_option, seconds_option, select, user_errors


@user_errors
def render_cli(
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", metavar="DIR", help="folder for DIR/<host>/...")] = None,  # noqa: UP007
    diff: Annotated[bool, typer.Option("--diff", help="print a unified diff against the files on each node")] = False,
    forks: Annotated[int, forks_option()] = 8,
    timeout: Annotated[float, seconds_option(
        help="seconds a node may take (--diff, auto), or to wait for another render into --out")] = 30,
) -> None:
    """Render hypervisor, storage and network configuration for each node."""
    from provision.errors import Unreachable
    from provision.plugins import default_hooks
    from provision.render import diff_against_nodes, prepare, render_all
    from provision.tree import render_tree

    if out is None and not diff:
        raise typer.BadParameter("give --out DIR, or --diff", param_hint="--out")
    nodes = select(inventory=inventory, limit=limit).nodes
    hooks = default_hooks()
    try:
        nodes, decisions = prepare(nodes, hooks=hooks, forks=forks, timeout=timeout)
        rendered = render_all(nodes=nodes, decisions=decisions, hooks=hooks) if diff else None  # once for both
        if out is not None:
            total = render_tree(out, nodes=nodes, decisions=decisions, hooks=hooks, rendered=rendered,
                                protected=[Path(inventory)] if inventory else [], wait=timeout)
            typer.echo(f"rendered {total} files for {len(nodes)} hosts into {out}")
        if rendered is not None:
            typer.echo(diff_against_nodes(rendered, nodes, timeout=timeout, forks=forks), nl=False)
    except Unreachable as exc:
        if "virt_type auto" in str(exc):
            raise
        raise Unreachable(f"cannot read the node's files for --diff: {exc}") from None
