"""``provision apply`` and ``provision verify``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from provision.cli.common import (
    Engine,
    EngineOpt,
    InventoryOpt,
    LimitOpt,
    ReportFileOpt,
    ReportFormat,
    emit,
    forks_option,
    progress,
    seconds_option,
    user_errors,
    warn,
)


@user_errors
def apply_cli(
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    check: Annotated[bool, typer.Option("--check", help="print the plan, change nothing; exit 3 when changes are pending")] = False,
    diff: Annotated[bool, typer.Option("--diff", help="print each file's and libvirt object's unified diff (secrets redacted)")] = False,
    forks: Annotated[int, forks_option()] = 8,
    timeout: Annotated[float, seconds_option(help="seconds a node may take")] = 120,
    output: Annotated[ReportFormat, typer.Option("--output", "-o", help="table, json or html")] = ReportFormat.table,
    report_file: ReportFileOpt = None,
    ignore: Annotated[list[str], typer.Option(
        metavar="ID", help="preflight check id whose failure does not refuse the node; repeatable")] = [],  # noqa: B006
    force: Annotated[bool, typer.Option("--force", help="redefine networks and pools running guests use")] = False,
    confirm_timeout: Annotated[float, seconds_option(
        "--confirm-timeout", min=5, max=3600,
        help="seconds the node waits for the controller to confirm a host network change before it rolls back")] = 60,
    no_remedies: Annotated[bool, typer.Option(
        "--no-remedies", help="install, load and start nothing: refuse a node whose preflight fails "
                              "(as the inventory's provision.remedies: false)")] = False,
    engine: EngineOpt = Engine.direct,
) -> None:
    """Install what each node's preflight finds missing, make it match its rendered configuration (host
    network, libvirt objects, then files), then verify it."""
    from provision import pipeline
    from provision.report.text import terminal_text
    from provision.stages.apply import to_text

    if output == ReportFormat.junit:
        raise typer.BadParameter("apply writes table, json or html", param_hint="--output")

    with progress("apply --check" if check else "apply") as bar:
        done = pipeline.apply(inventory=inventory, limit=limit, check=check, diff=diff, forks=forks, timeout=timeout,
                              ignore=ignore, force=force, confirm_timeout=confirm_timeout, on_start=bar.start,
                              on_done=bar.advance, warn=warn, remedies=not no_remedies, engine=engine.value)
    if diff:
        typer.echo(done.diff, nl=False)
    if done.drift is not None:
        typer.echo(terminal_text("provision: error: verification after apply found drift: " + "; ".join(done.drift)),
                   err=True)
    if diff and output == ReportFormat.table:  # in JSON each step carries its own diff
        typer.echo(done.object_diff, nl=False)
    if output == ReportFormat.html:
        from provision.report import render_report

        emit(render_report(done.report(), "html"), report_file)
    else:
        emit(json.dumps(done.as_dict(), indent=2) + "\n" if output == ReportFormat.json
             else terminal_text(to_text(done.results, check=check)), report_file)
    raise typer.Exit(done.exit_code)


@user_errors
def verify_cli(
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    forks: Annotated[int, forks_option()] = 8,
    timeout: Annotated[float, seconds_option(help="seconds a node may take")] = 30,
    output: Annotated[ReportFormat, typer.Option("--output", "-o", help="table, json, junit or html")] = ReportFormat.table,
    report_file: ReportFileOpt = None,
    engine: EngineOpt = Engine.direct,
) -> None:
    """Report drift of each node's managed files from the rendered ones; changes nothing. Exit 1 on drift."""
    from provision import pipeline
    from provision.cli.common import stdout_is_terminal
    from provision.report import render_report
    from provision.stages.preflight import exit_code

    report = pipeline.verify(inventory=inventory, limit=limit, forks=forks, timeout=timeout, warn=warn,
                             engine=engine.value)
    emit(render_report(report, output.value, color=stdout_is_terminal() and report_file is None), report_file)
    raise typer.Exit(exit_code(report))
