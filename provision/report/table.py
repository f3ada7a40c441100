"""The human report: a summary line per node, then its checks; colour only on a terminal."""

from __future__ import annotations

import io

from provision.report.text import terminal_text as safe
from provision.results import Report

STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def to_table(report: Report, *, color: bool | None = None) -> str:
    """Every text from a node, a plugin or an inventory goes in as :class:`rich.text.Text`: a
    ``[libvirt]`` in a message is shown as it is, never read as markup; and through :func:`safe`: a
    control sequence in it is shown escaped, never acted on by the terminal."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=bool(color), no_color=not color, width=140, soft_wrap=False)
    many = len(report.hosts) > 1
    if many:
        summary = Table(title="preflight summary", show_lines=False)
        for col in ("node", "decision", "failures", "warnings"):
            summary.add_column(col)
        for host in report.hosts:
            decision = host.decision.virt_type if host.decision else "unreachable"
            summary.add_row(Text(safe(host.host)), Text(decision), str(host.count("fail") + (0 if host.reachable else 1)),
                            str(host.count("warn")))
        console.print(summary)
    for host in report.hosts:
        if not host.reachable:
            console.print(Text.assemble((f"{safe(host.host)}: unreachable", "bold red"), f" - {safe(host.error)}"))
            continue
        d = host.decision
        head = Text.assemble(f"{safe(host.host)}: virt_type ", (safe(d.virt_type), "bold"), f", cpu_mode {safe(d.cpu_mode)}",
                             f" (decided by {safe(d.plugin)})" if d.plugin else "") if d else Text(safe(host.host))
        table = Table(title=head, title_justify="left", expand=False)
        table.add_column("status")
        table.add_column("check")
        table.add_column("message", overflow="fold")
        for c in host.checks:
            table.add_row(Text(c.status, STYLE[c.status]), Text(safe(c.id)),
                          Text(safe(c.message + (f"\n  remedy: {c.remedy}" if c.remedy and c.status != "pass" else ""))))
        console.print(table)
        if d:
            for reason in d.reasons:
                console.print(f"  - {safe(reason)}", markup=False, highlight=False, soft_wrap=True)
    totals = report.summary()
    console.print(", ".join(f"{n} {s}" for s, n in totals.items()), highlight=False)
    return buf.getvalue()
