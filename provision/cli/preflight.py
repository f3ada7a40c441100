"""``provision preflight``: check nodes and decide KVM or software QEMU."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from provision.cli.common import Output, stdout_is_terminal, user_errors


class FailOn(str, Enum):
    fail = "fail"
    warn = "warn"


@user_errors
def preflight_cli(
    host: Annotated[list[str], typer.Option("--host", "-H", help="testinfra host spec; repeatable")] = [],  # noqa: B006
    output: Annotated[Output, typer.Option("--output", "-o", help="table, json or junit")] = Output.table,
    fail_on: Annotated[FailOn, typer.Option(help="exit 1 on failures, or on warnings too")] = FailOn.fail,
    ignore: Annotated[list[str], typer.Option(help="check id whose failure becomes a warning; repeatable, or all")] = [],  # noqa: B006
    forks: Annotated[int, typer.Option(min=1, help="nodes checked at once")] = 8,
    timeout: Annotated[float, typer.Option(min=0.1, help="seconds a node may take before it is unreachable")] = 30,
) -> None:
    """Check nodes (the local one by default) and decide virt_type kvm or qemu, with evidence."""
    from provision.hosts import parse_host_spec
    from provision.preflight import Target, exit_code, preflight
    from provision.report import render_report

    targets = [Target(parse_host_spec(spec)) for spec in host or ["local://"]]
    report = preflight(targets=targets, forks=forks, timeout=timeout, ignore=ignore)
    typer.echo(render_report(report, output.value, color=stdout_is_terminal()), nl=False)
    raise typer.Exit(exit_code(report, fail_on=fail_on.value, ignore=ignore))
