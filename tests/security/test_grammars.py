"""Values are data in every file they are written into: hostile characters are refused naming the field,
and what is taken is escaped for the file's grammar and read back by the real reader."""

from __future__ import annotations

import subprocess

import pytest
from lxml import etree

from provision.report.junit import to_junit
from provision.results import CheckResult, HostReport, Report
from tests.cli.test_render import PINNED, inventory
from tests.validators import nft_check, virt_xml_validate

NAT = {"name": "n1", "bridge": "virbr7", "subnet": "192.168.177.0/24", "gateway": "192.168.177.1",
       "firewall": "nftables"}
NFS = {"name": "rd", "type": "nfs", "server": "nfs.example.com", "export": "/e", "mountpoint": "/var/lib/nova/instances"}
RBD = {"name": "vms", "type": "rbd", "pool": "vms", "monitors": ["192.0.2.61"], "user": "nova",
       "secret_uuid": "457eb676-33da-42ec-9a8c-9293d545c337", "key_file": "/etc/ceph/k"}
ISCSI = {"name": "san", "type": "iscsi", "portal": "192.0.2.50", "target": "iqn.2026-01.com.example:t",
         "initiator": "iqn.2026-01.com.example:i", "chap": {"username": "u", "password_file": "/etc/p"}}

HOSTILE = [
    # nftables strings and comments
    ({"network": {"nat": [{**NAT, "bridge": 'br"#'}]}}, "network.nat[0].bridge", "no glob, quote or comment"),
    ({"network": {"nat": [{**NAT, "outbound": 'eth0" masquerade #'}]}}, "network.nat[0].outbound", "interface name"),
    ({"network": {"nat": [{**NAT, "name": "n\nflush ruleset"}]}}, "network.nat[0].name", "must be 1-64 letters"),
    # networkd [Match] Name= globs
    ({"network": {"bridges": [{"name": "br*"}]}}, "network.bridges[0].name", "no glob"),
    ({"network": {"bridges": [{"name": "br0", "interfaces": ["!eth0"]}]}}, "network.bridges[0].interfaces[0]", "no glob"),
    ({"network": {"vlans": [{"name": "v[1]", "id": 5, "link": "eth0"}]}}, "network.vlans[0].name", "no glob"),
    # systemd mount units
    ({"storage": [{**NFS, "export": "/exports/a\\"}]}, "storage[0].export", "must not contain '\\' (it is written into a systemd mount unit)"),
    ({"storage": [{**NFS, "export": "/exports/a\nWhat=/evil"}]}, "storage[0].export", "without control characters"),
    # XML
    ({"storage": [{**ISCSI, "chap": {"username": "u\x07", "password_file": "/etc/p"}}]}, "storage[0].chap.username",
     "printable characters, on one line"),
    ({"storage": [{**NFS, "export": "/exports/\x1b[31m"}]}, "storage[0].export", "without control characters"),
    # ceph.conf (INI: '#' and ';' start comments)
    ({"storage": [{**RBD, "key_file": "/etc/ceph/k#x"}]}, "storage[0].key_file", "must not contain '#', ';' or spaces"),
    ({"storage": [{**RBD, "key_file": "/etc/ceph/k ;x"}]}, "storage[0].key_file", "must not contain '#', ';' or spaces"),
    ({"storage": [{**RBD, "user": "nova\n[global]"}]}, "storage[0].user", "written bare into nova.conf or ceph.conf"),
    # paths that are not a file's
    ({"storage": [{**RBD, "ceph_conf": "/etc/ceph/"}]}, "storage[0].ceph_conf", "without a trailing '/'"),
    ({"virt_type": "qemu", "hypervisor": {"cpu_mode": "custom", "cpu_models": ["Haswell\n[DEFAULT]"]}},
     "hypervisor.cpu_models[0]", "written bare into nova.conf"),
]


@pytest.mark.parametrize(("settings", "field", "message"), HOSTILE, ids=[f for _, f, _ in HOSTILE])
def test_hostile_values_are_refused_naming_the_field(cli, tmp_path, settings, field, message):
    inv = inventory(tmp_path, {**PINNED, **settings})
    out = tmp_path / "out"
    result = cli("render", "-i", inv, "--out", str(out))
    assert result.exit_code == 2, result.output
    assert f"{inv}: host n1: provision.{field}: " in result.stderr
    assert message in result.stderr, result.stderr
    assert not out.exists()


@pytest.mark.parametrize(("ceph_conf", "message"), [
    ("/", "provision.storage[0].ceph_conf: must be the absolute path of a file, not '/'"),
    ("/manifest.json", "provision: provision_plugins.storage.rbd renders '/manifest.json': /manifest.json is where "
                       "the rendered tree keeps its manifest"),
])
def test_a_file_that_cannot_be_a_rendered_file_is_refused(cli, tmp_path, ceph_conf, message):
    inv = inventory(tmp_path, {**PINNED, "storage": [{**RBD, "ceph_conf": ceph_conf}]})
    result = cli("render", "-i", inv, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "Errno" not in result.output
    assert f"{inv}: host n1: {message}" in result.stderr, result.stderr


def test_percent_in_an_nfs_export_is_a_percent_for_systemd(cli, tmp_path):
    inv = inventory(tmp_path, {**PINNED, "storage": [{**NFS, "export": "/exports/100%z full"}]})
    out = tmp_path / "out"
    assert cli("render", "-i", inv, "--out", str(out)).exit_code == 0
    unit = out / "n1" / "etc" / "systemd" / "system" / "var-lib-nova-instances.mount"
    assert "What=nfs.example.com:/exports/100%%z full\n" in unit.read_text()
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text())
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)], capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (0, "")
    # unescaped, systemd reads a specifier there (%z is none, so it refuses the unit): the escape is needed
    copy.write_text(unit.read_text().replace("%%", "%"))
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)], capture_output=True, text=True)
    assert proc.returncode != 0 and "Failed to resolve unit specifiers" in proc.stderr


@pytest.mark.root  # nft -c needs CAP_NET_ADMIN
def test_every_character_an_interface_name_may_have_passes_nft(cli, tmp_path):
    inv = inventory(tmp_path, {**PINNED, "network": {"nat": [{**NAT, "bridge": "_br.1-x", "outbound": "0e_1.2-"}]}})
    out = tmp_path / "out"
    assert cli("render", "-i", inv, "--out", str(out)).exit_code == 0
    ruleset = out / "n1" / "etc" / "nftables.d" / "provision-nat.nft"
    result = nft_check(ruleset)
    assert result.returncode == 0, result.stderr
    assert 'oifname "0e_1.2-" masquerade comment "n1"' in ruleset.read_text()
    assert 'iifname "_br.1-x" ip saddr' in ruleset.read_text()


def test_xml_characters_in_a_chap_user_survive_libvirts_schema(cli, tmp_path):
    user = "<u&'\">"
    inv = inventory(tmp_path, {**PINNED, "storage": [{**ISCSI, "chap": {"username": user, "password_file": "/etc/p"}}]})
    out = tmp_path / "out"
    assert cli("render", "-i", inv, "--out", str(out)).exit_code == 0
    pool = out / "n1" / "etc" / "provision" / "libvirt" / "pool-san.xml"
    assert etree.parse(str(pool)).find("source/auth").get("username") == user
    assert virt_xml_validate(pool).returncode == 0


def test_junit_holds_control_characters_as_text(tmp_path):
    message = "found \x1b[31mred\x1b[0m and a bell\x07 in /etc/motd"
    report = Report([HostReport("n\x01", True, None, [CheckResult("x.y", "fail", message, {"line": "\x00"})])])
    path = tmp_path / "junit.xml"
    path.write_text(to_junit(report))
    proc = subprocess.run(["xmllint", "--noout", str(path)], capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (0, "")
    case = etree.parse(str(path)).find(".//testcase")
    assert case.find("failure").get("message") == "found \\x1b[31mred\\x1b[0m and a bell\\x07 in /etc/motd"
    assert case.get("classname") == "n\\x01"
