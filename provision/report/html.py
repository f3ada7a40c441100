"""The fleet report as one self-contained HTML page (``-o html``): a summary, a matrix of nodes by checks
grouped by the inventory's groups with the failing checks first, each cell's message, evidence and
remedy on a click, a filter, and the decision's reasons per node. Styles and script are inline: the
page opens without any network. Every value from a node or an inventory reaches the page as JSON in a
``<script type="application/json">`` (Jinja's ``tojson`` escapes ``<``, ``>``, ``&`` and ``'``), and
the script shows it through ``textContent`` only: a ``<script>`` in a host name or message is text."""

from __future__ import annotations

import time
from typing import Any

from provision.results import Report

TITLES = {"provision.preflight/1": "preflight", "provision.verify/1": "verify", "provision.apply/1": "apply",
          "provision.smoke/1": "smoke"}


def page_data(report: Report, title: str) -> dict[str, Any]:
    """What the page shows: the report's hosts, compactly (35,000 results stay a few MB)."""
    hosts = []
    for h in report.hosts:
        hosts.append({
            "host": h.host, "groups": list(h.groups), "reachable": h.reachable, "error": h.error or "",
            "decision": h.decision.as_dict() if h.decision else None,
            "checks": [[_column(c, h.checks), c.status, c.message, c.evidence, c.remedy or ""] for c in h.checks],
        })
    return {"title": title, "schema": report.schema, "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "summary": report.summary(), "hosts": hosts}


def _column(check, checks) -> str:
    """The check's column: its id, or with its path where a host has several of that id (verify and
    apply report one ``apply.file`` per file)."""
    if sum(1 for c in checks if c.id == check.id) == 1:
        return check.id
    return f"{check.id} {check.evidence.get('path', '')}".rstrip()


def to_html(report: Report, *, title: str | None = None) -> str:
    from provision.templating import template

    kind = TITLES.get(report.schema, "report")
    return template((), "report/report.html.j2").render(data=page_data(report, title or f"provision {kind}"),
                                                        title=title or f"provision {kind}")
