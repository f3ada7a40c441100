"""provision render: golden files, validation by the real tools, atomic writes, diff, secrets."""

import configparser
import json
import os
import subprocess
from pathlib import Path
from uuid import UUID

import pytest

from tests.conftest import ROOT
from tests.validators import netplan_generate, virt_xml_validate

EXAMPLE = str(ROOT / "inventories" / "example")
GOLDEN = ROOT / "tests" / "golden" / "example"
GOLDEN_XML = sorted(GOLDEN.rglob("*.xml"))

# nova's documented [libvirt] options this project renders, with their allowed values
NOVA_OPTIONS = {
    "libvirt": {
        "virt_type": {"kvm", "lxc", "qemu", "parallels"},
        "cpu_mode": {"host-model", "host-passthrough", "custom", "none"},
        "cpu_models": None,
        "images_type": {"raw", "flat", "qcow2", "lvm", "rbd", "ploop", "default"},
        "images_volume_group": None,
        "images_rbd_pool": None,
        "images_rbd_ceph_conf": None,
        "rbd_user": None,
        "rbd_secret_uuid": "uuid",
    },
    "DEFAULT": {"force_raw_images": {"True", "False"}},
}


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("render")
    subprocess.run([str(Path(os.sys.executable).with_name("provision")), "render", "-i", EXAMPLE, "-l", "compute",
                    "--out", str(out)], check=True, capture_output=True)
    return out


def test_matches_the_golden_files(rendered):
    """Regenerate after an intended change with:
    .venv/bin/provision render -i inventories/example -l compute --out tests/golden/example"""
    assert tree(rendered) == tree(GOLDEN)


@pytest.mark.parametrize("path", GOLDEN_XML, ids=[str(p.relative_to(GOLDEN)) for p in GOLDEN_XML])
def test_every_xml_file_validates_against_libvirts_schema(path):
    result = virt_xml_validate(path)
    assert result.returncode == 0, result.stderr + result.stdout


def test_netplan_yaml_is_accepted_by_netplan_generate(rendered, tmp_path):
    text = (rendered / "cmp1" / "etc" / "netplan" / "60-provision.yaml").read_text()
    result = netplan_generate(text, tmp_path)
    assert result.returncode == 0, result.stderr
    units = {p.name for p in (tmp_path / "run" / "systemd" / "network").iterdir()}
    assert {"10-netplan-br-provider.netdev", "10-netplan-vlan120.netdev", "10-netplan-eth1.network"} <= units
    netdev = (tmp_path / "run" / "systemd" / "network" / "10-netplan-vlan120.netdev").read_text()
    assert "Id=120" in netdev


def test_networkd_units_say_the_same_as_netplan(rendered):
    units = rendered / "cmp3" / "etc" / "systemd" / "network"
    parse = lambda name: configparser.ConfigParser(strict=False, interpolation=None)  # noqa: E731
    cfg = parse("x")
    cfg.read(units / "60-provision-vlan120.netdev")
    assert cfg["NetDev"]["Kind"] == "vlan" and cfg["VLAN"]["Id"] == "120"
    cfg = parse("x")
    cfg.read(units / "60-provision-eth2.network")
    assert cfg["Network"]["VLAN"] == "vlan120"
    cfg = parse("x")
    cfg.read(units / "60-provision-br-provider.network")
    assert cfg["Network"]["Address"] == "198.51.100.13/24"  # cmp3's own host_vars address


def test_nova_conf_uses_only_documented_options_and_values(rendered):
    for host in ("cmp1", "cmp4"):
        conf = configparser.ConfigParser(interpolation=None, default_section="__nova_has_none__")
        conf.read(rendered / host / "etc" / "nova" / "nova.conf.d" / "50-provision-libvirt.conf")
        for section in conf.sections():
            for name, value in conf[section].items():
                allowed = NOVA_OPTIONS[section][name]
                if allowed == "uuid":
                    UUID(value)
                elif allowed is not None:
                    assert value in allowed, (host, section, name, value)
        assert conf["libvirt"]["images_type"] == "rbd" and conf["DEFAULT"]["force_raw_images"] == "True"
    cmp4 = configparser.ConfigParser(interpolation=None, default_section="__nova_has_none__")
    cmp4.read(rendered / "cmp4" / "etc" / "nova" / "nova.conf.d" / "50-provision-libvirt.conf")
    # cmp4 pins qemu and rack2 pins a custom model: cpu_models only appears with custom
    assert (cmp4["libvirt"]["virt_type"], cmp4["libvirt"]["cpu_mode"]) == ("qemu", "custom")
    assert cmp4["libvirt"]["cpu_models"] == "Cascadelake-Server-noTSX"


def test_manifest_lists_every_file_with_target_mode_and_plugin(rendered):
    manifest = json.loads((rendered / "cmp1" / "manifest.json").read_text())
    files = {f["target"]: f for f in manifest["files"]}
    on_disk = {"/" + k.split("/", 1)[1] for k in tree(rendered) if k.startswith("cmp1/") and not k.endswith("manifest.json")}
    assert set(files) == on_disk
    assert files["/etc/netplan/60-provision.yaml"]["mode"] == "0600"
    assert files["/etc/provision/libvirt/pool-vms.xml"]["plugin"] == "provision_plugins.storage.rbd"
    assert oct((rendered / "cmp1" / "etc" / "netplan" / "60-provision.yaml").stat().st_mode & 0o777) == "0o600"


def test_forked_workers_render_the_same_tree_as_one_process(tmp_path):
    from provision.inventory.select import select_nodes
    from provision.plugins import default_hooks
    from provision.stages.render import prepare
    from provision.stages.tree import render_tree

    hooks = default_hooks()
    nodes, decisions = prepare(select_nodes(inventory=EXAMPLE, limit="compute", hooks=hooks).nodes, hooks=hooks)
    counts = {workers: render_tree(tmp_path / str(workers), nodes=nodes, decisions=decisions, hooks=hooks, workers=workers)
              for workers in (1, 2)}
    assert counts[1] == counts[2] > 0
    one, two = tree(tmp_path / "1"), tree(tmp_path / "2")
    assert one == two and len(one) == counts[1] + len(nodes)  # every file and each host's manifest
    modes = {workers: {str(p.relative_to(tmp_path / str(workers))): p.stat().st_mode
                       for p in (tmp_path / str(workers)).rglob("*")} for workers in (1, 2)}
    assert modes[1] == modes[2]
    assert sorted(p.name for p in (tmp_path / "2").iterdir()) == sorted(n.name for n in nodes)  # no staging left


def test_libvirt_itself_defines_every_rendered_secret_pool_and_network(rendered, tmp_path, libvirtd):
    """Beyond the schemas: libvirtd's own parser and checks accept each object (defined under a
    test name and a fresh UUID, never started, and undefined again)."""
    import uuid

    from lxml import etree

    from tests.guests import PREFIX, virsh

    folder = rendered / "cmp1" / "etc" / "provision" / "libvirt"
    uuids: dict[str, str] = {}
    defined: list[tuple[str, str]] = []
    try:
        for kind in ("secret", "pool", "network"):
            for xml in sorted(folder.glob(f"{kind}-*.xml")):
                doc = etree.parse(str(xml))
                if kind == "secret":
                    if (own := doc.find("uuid")) is not None:
                        uuids[own.text] = own.text = str(uuid.uuid4())
                    usage = doc.find("usage/name") if doc.find("usage/name") is not None else doc.find("usage/target")
                    usage.text = PREFIX + usage.text
                else:
                    doc.find("name").text = ident = PREFIX + doc.findtext("name")
                    for ref in doc.iterfind(".//auth/secret"):
                        if ref.get("uuid"):
                            ref.set("uuid", uuids[ref.get("uuid")])
                        else:
                            ref.set("usage", PREFIX + ref.get("usage"))
                copy = tmp_path / xml.name
                doc.write(str(copy))
                command = {"secret": "secret-define", "pool": "pool-define", "network": "net-define"}[kind]
                proc = subprocess.run(["virsh", "-c", "qemu:///system", command, str(copy)], capture_output=True, text=True)
                if kind == "secret" and proc.returncode == 0:
                    ident = proc.stdout.split()[1]  # "Secret <uuid> created"
                if proc.returncode == 0:
                    defined.append((kind, ident))
                assert proc.returncode == 0, f"{xml.name}: {proc.stderr}"
        assert {k for k, _ in defined} == {"secret", "pool", "network"}
        assert len(defined) == len(list(folder.glob("*.xml")))
    finally:
        for kind, ident in reversed(defined):
            virsh({"secret": "secret-undefine", "pool": "pool-undefine", "network": "net-undefine"}[kind], ident)


def test_systemd_units_pass_systemd_analyze_verify(rendered, tmp_path):
    units = sorted(p for p in rendered.rglob("etc/systemd/system/*") if p.suffix in (".mount", ".service"))
    assert units, "the example renders nova's instances mount unit"
    for unit in units:
        copy = tmp_path / unit.name  # verify reads the unit's name from its file name (Where= must match it)
        copy.write_text(unit.read_text())
        proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)], capture_output=True, text=True)
        assert (proc.returncode, proc.stderr) == (0, ""), f"{unit}: {proc.stderr}"
