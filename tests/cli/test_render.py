"""provision render from the command line: bad input, atomicity, secrets, escaping, auto, diff, plugins."""

import json
from pathlib import Path

import pytest
import yaml
from lxml import etree

from tests.validators import nft_check, virt_xml_validate

LOCAL = {"ansible_connection": "local"}


def inventory(tmp_path: Path, provision: dict, hosts=("n1",), extra_host=None) -> str:
    data = {"all": {"hosts": {h: dict(LOCAL) for h in hosts}, "vars": {"provision": provision}}}
    if extra_host:
        data["all"]["hosts"].update(extra_host)
    path = tmp_path / "site.yml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


PINNED = {"virt_type": "qemu"}


BAD = [
    ({"network": {"vlans": [{"name": "v1", "id": 4095, "link": "eth0"}]}},
     "provision.network.vlans[0].id: input should be less than or equal to 4094 (got 4095)"),
    ({"network": {"vlans": [{"name": "v1", "id": 0, "link": "eth0"}]}},
     "provision.network.vlans[0].id: input should be greater than or equal to 1 (got 0)"),
    ({"network": {"bridges": [{"name": "br-much-too-long0"}]}},
     "provision.network.bridges[0].name: interface name must be 1-15 bytes (got 17)"),
    ({"network": {"bridges": [{"name": "br/0"}]}},
     "provision.network.bridges[0].name: interface name must be letters, digits, '_', '.' or '-'"),
    ({"network": {"bridges": [{"name": "br 0"}]}},
     "provision.network.bridges[0].name: interface name must be letters, digits, '_', '.' or '-', starting with a letter, digit or '_' (no glob, quote or comment characters) (got 'br 0')"),
    ({"network": {"nat": [{"name": "n", "bridge": "virbr7", "subnet": "192.168.177.0/33", "gateway": "192.168.177.1"}]}},
     "provision.network.nat[0].subnet: input is not a valid IPv4 network (got '192.168.177.0/33')"),
    ({"network": {"nat": [{"name": "n", "bridge": "virbr7", "subnet": "192.168.177.0/24", "gateway": "192.168.177.1",
                           "dhcp": {"start": "192.168.178.20", "end": "192.168.177.200"}}]}},
     "provision.network.nat[0].dhcp.start: 192.168.178.20 is outside 192.168.177.0/24"),
    ({"network": {"nat": [{"name": "a", "bridge": "virbr7", "subnet": "192.168.177.0/24", "gateway": "192.168.177.1"},
                          {"name": "b", "bridge": "virbr8", "subnet": "192.168.177.128/25", "gateway": "192.168.177.129"}]}},
     "provision.network.nat[1].subnet: 192.168.177.128/25 overlaps 192.168.177.0/24 (network.nat[0].subnet)"),
    ({"network": {"nat": [{"name": "a", "bridge": "virbr7", "subnet": "192.168.177.0/24", "gateway": "192.168.178.1"}]}},
     "provision.network.nat[0].gateway: 192.168.178.1 is not a host address of 192.168.177.0/24"),
    ({"storage": [{"name": "p", "type": "lvm", "devices": ["/dev/sdb"]}, {"name": "p", "type": "lvm", "devices": ["/dev/sdc"]}]},
     "provision.storage[1].name: duplicate pool name 'p' (also storage[0])"),
    ({"network": {"bridges": [{"name": "br0"}, {"name": "br0"}]}},
     "provision.network.bridges[1].name: duplicate interface 'br0' (also network.bridges[0])"),
    ({"storage": [{"name": "vms", "type": "rbd", "pool": "vms", "monitors": [], "user": "nova",
                   "secret_uuid": "457eb676-33da-42ec-9a8c-9293d545c337", "key_file": "/etc/ceph/k"}]},
     "provision.storage[0].monitors: list should have at least 1 item after validation, not 0"),
    ({"storage": [{"name": "san", "type": "iscsi", "portal": "192.0.2.50:3260", "target": "iqn.2026-13.com.example:x",
                   "initiator": "iqn.2026-01.com.example:n1"}]},
     "provision.storage[0].target: must be an IQN like iqn.2026-01.com.example:name"),
    ({"network": {"vlans": [{"name": "vlan120", "id": 120, "link": "eth2", "bridge": "br-tenant"}]}},
     "provision.network.vlans[0].bridge: names no defined bridge 'br-tenant' (bridges: none)"),
    ({"network": {"bridges": [{"name": "br0", "interfaces": ["eth1"]}, {"name": "br1", "interfaces": ["eth1"]}]}},
     "provision.network.bridges[1].interfaces[0]: eth1 is already a port of br0 (network.bridges[0])"),
    ({"network": {"bridges": [{"name": "br0"}, {"name": "br1", "interfaces": ["br0"]}]}},
     "provision.network.bridges[1].interfaces[0]: br0 is a bridge (network.bridges[0]); a bridge cannot be a port of a bridge"),
    ({"network": {"bridges": [{"name": "br0", "addresses": ["10.0.0.5/24"]}, {"name": "br1", "addresses": ["10.0.0.9/16"]}]}},
     "provision.network.bridges[1].addresses[0]: 10.0.0.9/16 overlaps 10.0.0.0/24 (network.bridges[0].addresses[0])"),
    ({"network": {"bridges": [{"name": "br0", "interfaces": ["vlan5"]}, {"name": "br1"}],
                  "vlans": [{"name": "vlan5", "id": 5, "link": "eth2", "bridge": "br1"}]}},
     "provision.network.vlans[0].bridge: vlan5 is also listed as a port of br0; a link has one bridge"),
    ({"network": {"bridges": [{"name": "br0"}],
                  "nat": [{"name": "br0", "bridge": "virbr7", "subnet": "192.168.177.0/24", "gateway": "192.168.177.1"}]}},
     "provision.network.nat[0].name: libvirt network 'br0' is also the bridged network of network.bridges[0]"),
    ({"storage": [{"name": "x", "type": "xfs"}]},
     "provision.storage[0].type: must be one of iscsi, lvm, nfs, rbd (got 'xfs')"),
    ({"storage": [{"name": "x", "type": "nfs", "server": "nfs..bad", "export": "/e", "mountpoint": "/m"}]},
     "provision.storage[0].server: must be a host name or an IPv4/IPv6 address"),
    ({"virt_type": "qemu", "hypervisor": {"images_type": "rbd"}},
     "provision.hypervisor.images_type: images_type rbd needs a storage entry of type rbd"),
    ({"virt_type": "qemu", "hypervisor": {"images_type": "lvm"}},
     "provision.hypervisor.images_type: images_type lvm needs a storage entry of type lvm"),
    ({"virt_type": "qemu", "hypervisor": {"cpu_mode": "custom"}},
     "provision.hypervisor.cpu_models: cpu_mode custom needs at least one CPU model"),
    ({"storage": [{"name": "san", "type": "iscsi", "portal": "192.0.2.50:70000", "target": "iqn.2026-01.com.example:x",
                   "initiator": "iqn.2026-01.com.example:n1"}]},
     "provision.storage[0].portal: port '70000' must be 1-65535 (got '192.0.2.50:70000')"),
    ({"storage": [{"name": "vms", "type": "rbd", "pool": "vms", "monitors": ["192.0.2.61"], "user": "nova",
                   "secret_uuid": "457eb676-33da-42ec-9a8c-9293d545c337", "key_file": "/etc/ceph/k",
                   "ceph_conf": "/etc/ceph/../../tmp/x.conf"}]},
     "provision.storage[0].ceph_conf: must be an absolute path without '.' or '..' parts (the value is not shown: this field sits beside a secret"),
    # values written into nova.conf, ceph.conf or libvirtd.conf cannot end their line or their quoted string
    ({"virt_type": "qemu", "hypervisor": {"cpu_mode": "custom", "cpu_models": ["Skylake\n[DEFAULT]"]}},
     "provision.hypervisor.cpu_models[0]: must be letters, digits, '_', '.', '+' or '-', starting with a letter or digit "
     "(it is written bare into nova.conf or ceph.conf) (got 'Skylake\\n[DEFAULT]')"),
    ({"storage": [{"name": "vms", "type": "rbd", "pool": "vms", "monitors": ["192.0.2.61"], "user": "nova admin",
                   "secret_uuid": "457eb676-33da-42ec-9a8c-9293d545c337", "key_file": "/etc/ceph/k"}]},
     "provision.storage[0].user: must be letters, digits, '_', '.', '+' or '-', starting with a letter or digit"),
    ({"virt_type": "qemu", "hypervisor": {"remote": "tls", "tls": {"ca_file": '/etc/pki/x".pem'}}},
     "provision.hypervisor.tls.ca_file: must not contain '\"' or '\\' (it is written into a quoted string of libvirtd.conf)"),
    ({"storage": [{"name": "-bad", "type": "lvm", "devices": ["/dev/sdb"]}]},
     "provision.storage[0].name: must be 1-64 letters, digits, '_', '.', '+' or '-', starting with a letter or digit (got '-bad')"),
]


@pytest.mark.parametrize(("provision", "message"), BAD, ids=[m[:50] for _, m in BAD])
def test_bad_input_is_exit_2_naming_file_host_field_and_writes_nothing(cli, tmp_path, provision, message):
    out = tmp_path / "out"
    merged = {**PINNED, **provision}
    # n0 is valid: it must not be rendered either
    inv = inventory(tmp_path, merged, hosts=("n1",), extra_host={"n0": {**LOCAL, "provision": {"storage": []}}})
    result = cli("render", "-i", inv, "--out", str(out))
    assert result.exit_code == 2, result.output
    assert f"{inv}: host n1: {message}" in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert not out.exists() or list(out.iterdir()) == []


def test_a_failure_in_one_host_leaves_the_existing_tree_untouched(cli, tmp_path):
    out = tmp_path / "out"
    good = inventory(tmp_path, PINNED, hosts=("n1", "n2"))
    assert cli("render", "-i", good, "--out", str(out)).exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # n2 now has an LVM device that is not a block device: its render fails after n1's succeeded
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({"all": {"vars": {"provision": PINNED}, "hosts": {
        "n1": dict(LOCAL),
        "n2": {**LOCAL, "provision": {"storage": [{"name": "vg", "type": "lvm", "devices": ["/dev/null"]}]}}}}}))
    result = cli("render", "-i", str(bad), "--out", str(out))
    assert result.exit_code == 2
    assert "host n2: provision.storage[0].devices[0]: /dev/null is not a block device" in result.stderr
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before


SECRET = "AQBsuperSecretCephKey0123456789=="
CHAP = "chap-pa55word-never-rendered"


def test_secrets_never_reach_files_manifest_or_output(cli, tmp_path):
    key = tmp_path / "client.nova.key"
    key.write_text(SECRET)
    chap = tmp_path / "chap"
    chap.write_text(CHAP)
    inv = inventory(tmp_path, {"virt_type": "qemu", "hypervisor": {"images_type": "rbd"}, "storage": [
        {"name": "vms", "type": "rbd", "pool": "vms", "monitors": ["192.0.2.61"], "user": "nova",
         "secret_uuid": "457eb676-33da-42ec-9a8c-9293d545c337", "key_file": str(key)},
        {"name": "san1", "type": "iscsi", "portal": "192.0.2.50", "target": "iqn.2026-01.com.example:san1",
         "initiator": "iqn.2026-01.com.example:n1", "chap": {"username": "u", "password_file": str(chap)}}]})
    out = tmp_path / "out"
    result = cli("render", "-i", inv, "--out", str(out), "--diff")
    assert result.exit_code == 0, result.output
    everything = result.output + "".join(p.read_text() for p in out.rglob("*") if p.is_file())
    assert SECRET not in everything and CHAP not in everything
    assert str(key) in everything  # the path is there, for the apply step
    show = cli("inventory", "show", "n1", "-i", inv)
    assert SECRET not in show.output and CHAP not in show.output


def test_xml_special_characters_are_escaped_and_survive_a_round_trip(cli, tmp_path):
    inv = inventory(tmp_path, {**PINNED, "storage": [
        {"name": "rd", "type": "nfs", "server": "nfs.example.com", "export": "/exports/r&d <'\">", "mountpoint": "/mnt/rd"}]})
    out = tmp_path / "out"
    assert cli("render", "-i", inv, "--out", str(out)).exit_code == 0
    pool = out / "n1" / "etc" / "provision" / "libvirt" / "pool-rd.xml"
    assert "r&amp;d" in pool.read_text()
    assert etree.parse(str(pool)).find("source/dir").get("path") == "/exports/r&d <'\">"
    assert virt_xml_validate(pool).returncode == 0


def test_ipv6_nfs_server_and_monitor(cli, tmp_path):
    inv = inventory(tmp_path, {"virt_type": "qemu", "hypervisor": {"images_type": "rbd"}, "storage": [
        {"name": "instances", "type": "nfs", "server": "2001:db8::5", "export": "/srv/nova",
         "mountpoint": "/var/lib/nova/instances", "nfs_version": 4.2},
        {"name": "vms", "type": "rbd", "pool": "vms", "monitors": ["[2001:db8::61]:3300", "192.0.2.62"], "user": "nova",
         "secret_uuid": "457eb676-33da-42ec-9a8c-9293d545c337", "key_file": "/etc/ceph/k"}]})
    out = tmp_path / "out"
    assert cli("render", "-i", inv, "--out", str(out)).exit_code == 0
    root = out / "n1" / "etc"
    unit = (root / "systemd" / "system" / "var-lib-nova-instances.mount").read_text()
    assert "What=[2001:db8::5]:/srv/nova" in unit and "Options=_netdev,vers=4.2" in unit
    assert "mon_host = 192.0.2.62:6789,[2001:db8::61]:3300" in (root / "ceph" / "ceph.conf").read_text()
    for xml in (root / "provision" / "libvirt").glob("*.xml"):
        assert virt_xml_validate(xml).returncode == 0, xml


@pytest.mark.root  # nft -c needs CAP_NET_ADMIN
def test_nftables_nat_is_accepted_by_nft(cli, tmp_path):
    inv = inventory(tmp_path, {**PINNED, "network": {"nat": [
        {"name": "guestnat", "bridge": "virbr7", "subnet": "192.168.177.0/24", "gateway": "192.168.177.1",
         "dhcp": {"start": "192.168.177.20", "end": "192.168.177.200"}, "outbound": "eth0", "firewall": "nftables"}]}})
    out = tmp_path / "out"
    assert cli("render", "-i", inv, "--out", str(out)).exit_code == 0
    ruleset = out / "n1" / "etc" / "nftables.d" / "provision-nat.nft"
    result = nft_check(ruleset)
    assert result.returncode == 0, result.stderr
    assert 'ip saddr 192.168.177.0/24 ip daddr != 192.168.177.0/24 oifname "eth0" masquerade' in ruleset.read_text()
    network = out / "n1" / "etc" / "provision" / "libvirt" / "network-guestnat.xml"
    assert etree.parse(str(network)).find("forward").get("mode") == "open"
    assert virt_xml_validate(network).returncode == 0


def test_auto_virt_type_takes_the_nodes_preflight_decision(cli, tmp_path, kvm_permissions):
    inv = inventory(tmp_path, {"virt_type": "auto"})
    out = tmp_path / "out"
    assert cli("render", "-i", inv, "--out", str(out)).exit_code == 0
    decision = json.loads(cli("preflight", "-i", inv, "-o", "json").stdout)["hosts"][0]["decision"]
    conf = (out / "n1" / "etc" / "nova" / "nova.conf.d" / "50-provision-libvirt.conf").read_text()
    assert f"virt_type = {decision['virt_type']}" in conf and f"cpu_mode = {decision['cpu_mode']}" in conf


def test_auto_virt_type_on_an_unreachable_node_renders_nothing(cli, tmp_path):
    inv = inventory(tmp_path, {"virt_type": "auto"},
                    extra_host={"gone": {"ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_user": "nobody"}})
    out = tmp_path / "out"
    result = cli("render", "-i", inv, "--out", str(out), "--timeout", "5")
    assert result.exit_code == 1
    assert "virt_type auto needs each node's preflight decision: gone: " in result.stderr
    assert not out.exists()


def test_diff_compares_with_the_files_on_the_node_and_changes_nothing(cli, tmp_path):
    conf = tmp_path / "ceph.conf"
    conf.write_text(f"[global]\nmon_host = 192.0.2.99:6789\n[client.nova]\nkey = {SECRET}\n")
    inv = inventory(tmp_path, {"virt_type": "qemu", "hypervisor": {"images_type": "rbd"}, "storage": [
        {"name": "vms", "type": "rbd", "pool": "vms", "monitors": ["192.0.2.61"], "user": "nova",
         "secret_uuid": "457eb676-33da-42ec-9a8c-9293d545c337", "key_file": "/etc/ceph/k", "ceph_conf": str(conf)}]})
    result = cli("render", "-i", inv, "--diff")
    assert result.exit_code == 0
    assert f"--- a/n1:{conf}" in result.stdout and f"+++ b/n1:{conf}" in result.stdout
    assert "-mon_host = 192.0.2.99:6789" in result.stdout and "+mon_host = 192.0.2.61:6789" in result.stdout
    assert "--- /dev/null\n+++ b/n1:/etc/nova/nova.conf.d/50-provision-libvirt.conf" in result.stdout
    # a key the node's file holds inline is not printed
    assert "-key = <redacted>" in result.stdout and SECRET not in result.stdout
    assert conf.read_text() == f"[global]\nmon_host = 192.0.2.99:6789\n[client.nova]\nkey = {SECRET}\n"


def test_diff_of_many_nodes_reads_them_at_once_and_prints_them_in_order(cli, tmp_path):
    hosts = ("n1", "n2", "n3")
    inv = inventory(tmp_path, {**PINNED, "network": {"bridges": [{"name": "br-x", "interfaces": ["eth9"]}]}}, hosts=hosts)
    result = cli("render", "-i", inv, "--diff", "--forks", "3")
    assert result.exit_code == 0, result.output
    heads = [line for line in result.stdout.splitlines() if line.startswith("+++ b/") and line.endswith("60-provision.yaml")]
    assert heads == [f"+++ b/{h}:/etc/netplan/60-provision.yaml" for h in hosts]


def test_out_and_diff_together_write_the_tree_the_diff_shows(cli, tmp_path):
    inv = inventory(tmp_path, {**PINNED, "network": {"bridges": [{"name": "br-x", "interfaces": ["eth9"]}]}})
    both, alone = tmp_path / "both", tmp_path / "alone"
    result = cli("render", "-i", inv, "--out", str(both), "--diff")
    assert result.exit_code == 0, result.output
    assert "rendered" in result.stdout and "+++ b/n1:/etc/netplan/60-provision.yaml" in result.stdout
    assert cli("render", "-i", inv, "--out", str(alone)).exit_code == 0
    written = {p.relative_to(both): p.read_bytes() for p in both.rglob("*") if p.is_file()}
    assert written == {p.relative_to(alone): p.read_bytes() for p in alone.rglob("*") if p.is_file()}
    netplan = (both / "n1" / "etc" / "netplan" / "60-provision.yaml").read_text()
    assert all(f"+{line}" in result.stdout for line in netplan.splitlines())


def test_a_third_party_storage_plugin_adds_a_dir_type(cli, tmp_path):
    env = {"PROVISION_PLUGINS": "tests.fixture_plugins.dir_storage"}
    inv = inventory(tmp_path, {**PINNED, "storage": [{"name": "images", "type": "dir", "path": "/var/lib/images"}]})
    out = tmp_path / "out"
    result = cli("render", "-i", inv, "--out", str(out), env=env)
    assert result.exit_code == 0, result.output
    pool = out / "n1" / "etc" / "provision" / "libvirt" / "pool-images.xml"
    assert virt_xml_validate(pool).returncode == 0
    manifest = json.loads((out / "n1" / "manifest.json").read_text())
    assert {"path": "etc/provision/libvirt/pool-images.xml", "target": "/etc/provision/libvirt/pool-images.xml",
            "mode": "0644", "plugin": "tests.fixture_plugins.dir_storage"} in manifest["files"]
    assert "storage.dir" in cli("checks", env=env).stdout
    # without the plugin, the same inventory is an error that lists the built-in types
    assert "must be one of iscsi, lvm, nfs, rbd (got 'dir')" in cli("render", "-i", inv, "--out", str(out)).stderr


def test_render_needs_out_or_diff(cli):
    result = cli("render")
    assert result.exit_code == 2 and "give --out DIR, or --diff" in result.stderr


def test_iscsi_direct_and_libvirtd_over_tcp_with_sasl(cli, tmp_path):
    inv = inventory(tmp_path, {"virt_type": "qemu", "hypervisor": {"remote": "tcp"}, "storage": [
        {"name": "san2", "type": "iscsi", "portal": "[2001:db8::50]:3260", "target": "iqn.2026-01.com.example:san2",
         "initiator": "iqn.2026-01.com.example:n1", "direct": True}]})
    out = tmp_path / "out"
    assert cli("render", "-i", inv, "--out", str(out)).exit_code == 0
    root = out / "n1" / "etc"
    pool = root / "provision" / "libvirt" / "pool-san2.xml"
    assert virt_xml_validate(pool).returncode == 0
    tree = etree.parse(str(pool))
    assert tree.getroot().get("type") == "iscsi-direct" and tree.find("target") is None
    assert tree.find("source/host").get("name") == "2001:db8::50"
    conf = (root / "libvirt" / "libvirtd.conf").read_text()
    assert "listen_tcp = 1" in conf and 'auth_tcp = "sasl"' in conf and "listen_tls = 0" in conf
    assert "mech_list: scram-sha-256" in (root / "sasl2" / "libvirt.conf").read_text()
    # ssh and the unix socket need no daemon settings
    inv = inventory(tmp_path, {"virt_type": "qemu", "hypervisor": {"remote": "ssh"}})
    assert cli("render", "-i", inv, "--out", str(tmp_path / "ssh")).exit_code == 0
    assert not (tmp_path / "ssh" / "n1" / "etc" / "libvirt").exists()


@pytest.mark.parametrize(("where", "message"), [
    ("a-file", "--out {out}: is a file, not a folder"),
    ("a-file/sub", "--out {out}: cannot make the output folder there: Not a directory"),
])
def test_an_unusable_output_folder_is_exit_2(cli, tmp_path, where, message):
    (tmp_path / "a-file").write_text("keep me\n")
    out = tmp_path / where
    result = cli("render", "-i", inventory(tmp_path, PINNED), "--out", str(out))
    assert result.exit_code == 2
    assert f"provision: error: {message.format(out=out)}" in result.stderr
    assert (tmp_path / "a-file").read_text() == "keep me\n"


@pytest.mark.root  # mounts a small tmpfs
def test_a_full_disk_is_exit_1_and_moves_nothing_into_place(cli, tmp_path):
    import subprocess

    out = tmp_path / "small"
    out.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(out)], check=True)
    try:
        result = cli("render", "-i", inventory(tmp_path, PINNED, hosts=[f"n{i}" for i in range(20)]), "--out", str(out))
        assert result.exit_code == 1
        assert f"provision: error: cannot write the rendered tree into {out}: [Errno 28] No space left on device" in result.stderr
        assert "nothing was moved into place" in result.stderr
        assert list(out.iterdir()) == []
    finally:
        subprocess.run(["umount", str(out)], check=True)


def test_two_plugins_rendering_one_file_is_exit_2_and_writes_nothing(cli, tmp_path):
    env = {"PROVISION_PLUGINS": "tests.fixture_plugins.clashing_render"}
    inv = inventory(tmp_path, PINNED, hosts=("n1", "n2"))
    out = tmp_path / "out"
    result = cli("render", "-i", inv, "--out", str(out), env=env)
    assert result.exit_code == 2
    for host in ("n1", "n2"):
        assert (f"{inv}: host {host}: provision: /etc/nova/nova.conf.d/50-provision-libvirt.conf is rendered by both "
                "provision_plugins.hypervisor and tests.fixture_plugins.clashing_render") in result.stderr
    assert not out.exists()


def test_a_plugin_target_that_climbs_out_of_the_tree_is_refused(cli, tmp_path):
    env = {"PROVISION_PLUGINS": "tests.fixture_plugins.escaping_render"}
    inv = inventory(tmp_path, PINNED)
    out = tmp_path / "deep" / "out"
    result = cli("render", "-i", inv, "--out", str(out), env=env)
    assert result.exit_code == 2
    assert (f"{inv}: host n1: provision: tests.fixture_plugins.escaping_render renders '/etc/../../n1-escaped.conf': "
            "a target must be an absolute path without '.' or '..' parts") in result.stderr
    assert not out.exists() and sorted(p.name for p in (tmp_path / "deep").iterdir()) == []


def test_a_secret_pasted_into_a_file_field_is_refused_without_echoing_it(cli, tmp_path):
    inv = inventory(tmp_path, {"virt_type": "qemu", "storage": [
        {"name": "vms", "type": "rbd", "pool": "vms", "monitors": ["192.0.2.61"], "user": "nova",
         "secret_uuid": "457eb676-33da-42ec-9a8c-9293d545c337", "key_file": SECRET},
        {"name": "san1", "type": "iscsi", "portal": "192.0.2.50", "target": "iqn.2026-01.com.example:san1",
         "initiator": "iqn.2026-01.com.example:n1", "chap": {"username": "u", "password_file": CHAP}}]})
    for args in (("render", "-i", inv, "--out", str(tmp_path / "out")), ("inventory", "validate", "-i", inv),
                 ("inventory", "show", "n1", "-i", inv)):
        result = cli(*args)
        assert result.exit_code == 2
        assert SECRET not in result.output and CHAP not in result.output
        assert ("provision.storage[0].key_file: must be an absolute path "
                "(the value is not shown: this field names a secret or its file)") in result.stderr
        assert "provision.storage[1].chap.password_file: must be an absolute path (the value is not shown" in result.stderr


@pytest.mark.root  # mounts a tmpfs
def test_a_tree_that_cannot_be_swapped_in_puts_every_host_back(cli, tmp_path):
    import subprocess

    inv = inventory(tmp_path, PINNED, hosts=("n0", "n1", "n2"))
    out = tmp_path / "out"
    (out / "n0").mkdir(parents=True)
    (out / "n0" / "old.conf").write_text("n0 before\n")
    (out / "n2").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(out / "n2")], check=True)  # a mount point cannot be renamed
    try:
        (out / "n2" / "old.conf").write_text("n2 before\n")
        for host in ("n0", "n2"):  # trees an earlier render made: provision may replace them
            (out / host / "manifest.json").write_text(json.dumps({"host": host, "files": [{"path": "old.conf"}]}))
        result = cli("render", "-i", inv, "--out", str(out))
        assert result.exit_code == 1
        assert (f"provision: error: cannot move n2's tree into {out}: [Errno 16] Device or resource busy"
                in result.stderr)
        assert "nothing was changed" in result.stderr
        # n0 had a tree, n1 had none, n2 could not be moved: all three as they were, no staging left
        assert sorted(p.name for p in out.iterdir()) == ["n0", "n2"]
        assert sorted(p.name for p in (out / "n0").iterdir()) == ["manifest.json", "old.conf"]
        assert (out / "n2" / "old.conf").read_text() == "n2 before\n"
    finally:
        subprocess.run(["umount", str(out / "n2")], check=True)
