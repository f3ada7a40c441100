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


HOSTILE = "\x1b[2J\x1b[31m\x1b]0;owned\x07r\roo\u202et\x9b1m"


def test_control_sequences_from_a_node_are_shown_escaped_never_sent_to_the_terminal():
    from provision_plugins.kvm import kvm_device
    from tests.nodes import healthy_node

    facts = healthy_node(**{"kvm.qemu_conf": {"path": "/etc/libvirt/qemu.conf", "text": f'user = "{HOSTILE}"\n'}})
    check = kvm_device(facts, {"virt_type": "auto"})
    assert HOSTILE in check.message  # the check reports what the node says; the writer makes it safe
    report = Report((HostReport(f"n1{HOSTILE}", True, Decision("qemu", "none", (HOSTILE,)), (check,)),
                     HostReport("n2", False, error=f"ssh: {HOSTILE}")))
    for color in (False, True):
        text = to_table(report, color=color)
        for raw in ("\x1b[2J", "\x1b]0;", "\x07", "\r", "\u202e", "\x9b"):
            assert raw not in text, (color, raw)
        assert "\\x1b[2J\\x1b[31m\\x1b]0;owned\\x07r\\x0doo\\u202et\\x9b1m" in text
    assert "\x1b" not in to_table(report, color=False)


def test_an_error_message_with_control_sequences_is_escaped(cli, tmp_path):
    bad = tmp_path / f"site{HOSTILE[:4]}.yml"
    result = cli("inventory", "validate", "-i", str(bad))
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr and "site\\x1b[2J.yml: no such inventory file or folder" in result.stderr
