"""Writers that turn a :class:`~provision.results.Report` into text: table, JSON, JUnit."""

from __future__ import annotations

from provision.results import Report

FORMATS = ("table", "json", "junit", "html")


def load_writer(fmt: str) -> None:
    """Import what writing ``fmt`` needs (rich, for the table), ahead of the report: a preflight does it
    while its nodes answer."""
    if fmt == "table":
        import rich.console
        import rich.table  # noqa: F401


def render_report(report: Report, fmt: str, *, color: bool | None = None) -> str:
    if fmt == "json":
        from provision.report.json import to_json

        return to_json(report)
    if fmt == "junit":
        from provision.report.junit import to_junit

        return to_junit(report)
    if fmt == "html":
        from provision.report.html import to_html

        return to_html(report)
    from provision.report.table import to_table

    return to_table(report, color=color)
