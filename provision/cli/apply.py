"""``provision apply`` and ``provision verify``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from provision.cli.common import InventoryOpt, LimitOpt, Output, forks_option, progress, seconds_option, select, user_errors


def _prepared(inventory, limit, forks, timeout, ignore=()):
    """The selected nodes, those that pass the preflight gate with their rendered files and libvirt
    objects and node steps, and the refused ones."""
    from provision.apply import gate, node_steps_for, objects_for
    from provision.plugins import default_hooks
    from provision.render import render_all, with_defaults

    hooks = default_hooks()
    nodes = with_defaults(select(inventory=inventory, limit=limit).nodes, hooks=hooks)
    passed, decisions, refused = gate(nodes=nodes, hooks=hooks, forks=forks, timeout=timeout, ignore=ignore)
    rendered = render_all(nodes=passed, decisions=decisions, hooks=hooks)
    objects = objects_for(nodes=passed, rendered=rendered, decisions=decisions, hooks=hooks)
    steps = node_steps_for(nodes=passed, decisions=decisions, hooks=hooks)
    return nodes, passed, rendered, {"objects": objects, "steps": steps}, refused


@user_errors
def apply_cli(
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    check: Annotated[bool, typer.Option("--check", help="print the plan, change nothing; exit 3 when changes are pending")] = False,
    diff: Annotated[bool, typer.Option("--diff", help="print each file's and libvirt object's unified diff (secrets redacted)")] = False,
    forks: Annotated[int, forks_option()] = 8,
    timeout: Annotated[float, seconds_option(help="seconds a node may take")] = 120,
    output: Annotated[Output, typer.Option("--output", "-o", help="table or json")] = Output.table,
    ignore: Annotated[list[str], typer.Option(
        metavar="ID", help="preflight check id whose failure does not refuse the node; repeatable")] = [],  # noqa: B006
    force: Annotated[bool, typer.Option("--force", help="redefine networks and pools running guests use")] = False,
    confirm_timeout: Annotated[float, seconds_option(
        "--confirm-timeout", min=5, max=3600,
        help="seconds the node waits for the controller to confirm a host network change before it rolls back")] = 60,
) -> None:
    """Make each node match its rendered configuration (host network, libvirt objects, then files), then verify it."""
    from provision.apply import apply_nodes, exit_code, object_diffs, to_json, to_text
    from provision.render import diff_against_nodes
    from provision.report.text import terminal_text

    selected, nodes, rendered, plan, refused = _prepared(inventory, limit, forks, timeout, ignore)
    if diff:
        typer.echo(diff_against_nodes(rendered, nodes, timeout=timeout, forks=forks), nl=False)
    with progress(len(nodes), "apply --check" if check else "apply") as advance:
        results = apply_nodes(nodes=nodes, rendered=rendered, **plan, check=check, forks=forks,
                              timeout=timeout, force=force, diff=diff, on_done=advance, confirm_timeout=confirm_timeout)
    order = {n.name: i for i, n in enumerate(selected)}
    results = sorted([*refused, *results], key=lambda r: order[r.host])
    code = exit_code(results, check=check)
    changed = [n for n in nodes if any(r.host == n.name and r.pending for r in results)]
    if not check and code == 0 and changed:  # apply ends with verify: a changed node must now read as converged
        after = apply_nodes(nodes=changed, rendered=rendered, **plan, check=True, forks=forks, timeout=timeout)
        drift = [f"{r.host}: {s.target} ({s.action})" for r in after for s in r.steps if s.action != "unchanged"]
        if drift or exit_code(after, check=True):
            typer.echo(terminal_text("provision: error: verification after apply found drift: " + "; ".join(drift)), err=True)
            code = 1
    if diff and output != Output.json:  # in JSON each step carries its own diff
        typer.echo(object_diffs(results), nl=False)
    typer.echo(json.dumps(to_json(results, check=check), indent=2) if output == Output.json
               else terminal_text(to_text(results, check=check)), nl=False)
    raise typer.Exit(code)


@user_errors
def verify_cli(
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    forks: Annotated[int, forks_option()] = 8,
    timeout: Annotated[float, seconds_option(help="seconds a node may take")] = 30,
    output: Annotated[Output, typer.Option("--output", "-o", help="table, json or junit")] = Output.table,
) -> None:
    """Report drift of each node's managed files from the rendered ones; changes nothing. Exit 1 on drift."""
    from provision.apply import apply_nodes, verify_report
    from provision.cli.common import stdout_is_terminal
    from provision.preflight import exit_code
    from provision.report import render_report

    _, nodes, rendered, plan, refused = _prepared(inventory, limit, forks, timeout, ignore=("all",))
    report = verify_report(refused + apply_nodes(nodes=nodes, rendered=rendered, **plan, check=True, forks=forks,
                                                 timeout=timeout))
    typer.echo(render_report(report, output.value, color=stdout_is_terminal()), nl=False)
    raise typer.Exit(exit_code(report))
