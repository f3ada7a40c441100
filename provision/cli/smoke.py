"""``provision smoke`` and ``provision canary build``."""

from __future__ import annotations

from typing import Annotated

import typer

from provision.cli.common import (
    HostOpt,
    InventoryOpt,
    LimitOpt,
    ReportFileOpt,
    ReportFormat,
    command_group,
    emit,
    forks_option,
    seconds_option,
    select,
    stdout_is_terminal,
    user_errors,
)

canary_app = command_group("The canary guest used by smoke tests.")


@user_errors
def smoke_cli(
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    host: HostOpt = [],  # noqa: B006
    output: Annotated[ReportFormat, typer.Option("--output", "-o", help="table, json, junit or html")] = ReportFormat.table,
    report_file: ReportFileOpt = None,
    forks: Annotated[int, forks_option()] = 4,
    timeout: Annotated[float, seconds_option(min=1, help="seconds to wait for the canary's marker")] = 60,
    storage: Annotated[bool, typer.Option(
        "--storage", help="also boot it with a small disk from every pool the inventory gives the node, and "
                          "check a marker written to each reads back (one check per pool)")] = False,
) -> None:
    """Boot a canary guest on each node, wait for its console marker, report the boot time, remove it."""
    from provision.guests.canary import find_canary
    from provision.guests.smoke import smoke
    from provision.plugins import default_hooks
    from provision.report import render_report
    from provision.stages.preflight import exit_code

    nodes = select(inventory=inventory, limit=limit, hosts=host)
    report = smoke(nodes=nodes, canary=find_canary(), hooks=default_hooks(), forks=forks, timeout=timeout,
                   storage=storage).with_groups(nodes)
    emit(render_report(report, output.value, color=stdout_is_terminal() and report_file is None), report_file)
    raise typer.Exit(exit_code(report))


@canary_app.command("build")
@user_errors
def canary_build_cli(force: Annotated[bool, typer.Option(help="rebuild even if it exists")] = False) -> None:
    """Build the canary: Debian's cloud kernel (apt-get download, dpkg -x) and a busybox initramfs."""
    from provision.guests.canary import build_canary

    canary = build_canary(force=force)
    typer.echo(f"canary: {canary.kernel} {canary.initrd}")
