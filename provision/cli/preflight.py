"""``provision preflight``: check nodes and decide KVM or software QEMU."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from provision.cli.common import (
    Engine,
    EngineOpt,
    HostOpt,
    InventoryOpt,
    LimitOpt,
    ReportFileOpt,
    ReportFormat,
    emit,
    forks_option,
    progress,
    seconds_option,
    stdout_is_terminal,
    user_errors,
    warn,
)


class FailOn(str, Enum):
    fail = "fail"
    warn = "warn"


@user_errors
def preflight_cli(
    inventory: InventoryOpt = None,
    limit: LimitOpt = None,
    host: HostOpt = [],  # noqa: B006
    output: Annotated[ReportFormat, typer.Option("--output", "-o", help="table, json, junit or html")] = ReportFormat.table,
    report_file: ReportFileOpt = None,
    fail_on: Annotated[FailOn, typer.Option(help="exit 1 on failures, or on warnings too")] = FailOn.fail,
    ignore: Annotated[list[str], typer.Option(
        metavar="ID", help="check id whose failure becomes a warning; repeatable, or all")] = [],  # noqa: B006
    forks: Annotated[int, forks_option("nodes checked at once")] = 8,
    timeout: Annotated[float, seconds_option(help="seconds a node may take before it is unreachable")] = 30,
    functional: Annotated[bool, typer.Option(
        "--functional", help="also boot the canary guest on each node with QEMU: under KVM, then under TCG if that fails")] = False,
    boot_timeout: Annotated[float, seconds_option(
        min=1, max=3600, help="seconds one canary boot may take (--functional)")] = 15,
    engine: EngineOpt = Engine.direct,
) -> None:
    """Check nodes (the local one by default) and decide virt_type kvm or qemu, with evidence."""
    from provision import pipeline
    from provision.report import load_writer, render_report
    from provision.stages.preflight import exit_code

    with progress("preflight") as bar:
        report = pipeline.preflight(inventory=inventory, limit=limit, hosts=host, forks=forks, timeout=timeout,
                                    ignore=ignore, functional=boot_timeout if functional else None,
                                    on_start=bar.start, on_done=bar.advance, warn=warn,
                                    meanwhile=lambda: load_writer(output.value), engine=engine.value,
                                    fail_on=fail_on.value)
    emit(render_report(report, output.value, color=stdout_is_terminal() and report_file is None), report_file)
    raise typer.Exit(exit_code(report, fail_on=fail_on.value, ignore=ignore))
