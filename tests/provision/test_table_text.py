"""The table shows plugin and node text as it is: brackets are never read as rich markup."""

from provision.report.table import to_table
from provision.results import CheckResult, Decision, HostReport, Report


def test_brackets_in_messages_hosts_and_remedies_are_shown_as_they_are():
    checks = (CheckResult("demo.markup", "fail", "set [libvirt] virt_type in nova.conf [/x] [bold]", {}, "edit [/etc]"),)
    report = Report((HostReport("[n1]", True, Decision("qemu", "none", ("[red]why[/red]",)), checks),
                     HostReport("[n2]", False, error="no route [/]")))
    text = to_table(report, color=False)
    for shown in ("set [libvirt] virt_type in nova.conf [/x] [bold]", "remedy: edit [/etc]", "[n1]: virt_type qemu",
                  "[n2]: unreachable - no route [/]", "[red]why[/red]"):
        assert shown in text, shown
    coloured = to_table(report, color=True)
    assert "[libvirt]" in coloured and "\x1b[" in coloured
