"""Inventories: Ansible's YAML format, precedence with `provision` merged key by key, patterns, errors."""

import os
import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest

from provision.errors import InputError
from provision.inventory.load import load_inventory
from provision.inventory.select import describe_host, select_nodes
from tests.conftest import ROOT
from tests.unprivileged import as_nobody

EXAMPLE = ROOT / "inventories" / "example"


def write(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path / next(iter(files))


def test_example_merges_provision_key_by_key(hooks):
    nodes = {n.name: n for n in select_nodes(inventory=str(EXAMPLE), hooks=hooks).nodes}
    # group_vars/all < compute < rack2 < the host's own inline vars
    hv = nodes["cmp4"].settings["hypervisor"]
    assert (nodes["cmp4"].settings["virt_type"], hv["cpu_mode"], hv["cpu_models"], hv["libvirt"]) == (
        "qemu", "custom", ["Cascadelake-Server-noTSX"], "host")
    assert nodes["cmp1"].settings["virt_type"] == "kvm"
    assert nodes["ctl1"].settings["virt_type"] == "auto"
    assert nodes["cmp2"].spec.spec == "ssh://ops@192.0.2.12:2202"
    assert nodes["cmp1"].spec.spec == "ssh://ops@192.0.2.11:22"  # host_vars/cmp1.yml
    assert nodes["cmp1"].spec.ssh_args == ("-o", "StrictHostKeyChecking=accept-new")
    # ssh keeps one master connection per node for the next command, in a folder only we can enter
    assert nodes["cmp1"].spec.control_path == f"/tmp/provision-ssh-{os.getuid()}/%C"
    assert nodes["cmp3"].groups == ("compute", "rack2")


def test_plain_variables_are_replaced_not_merged(tmp_path, hooks):
    inv = write(tmp_path, {"hosts.yml": """
        all:
          vars: {ansible_ssh_common_args: "-o A=1", extra: {a: 1}}
          hosts:
            n1: {ansible_host: 192.0.2.1, extra: {b: 2}}
        """})
    raw = load_inventory(inv)
    assert raw.variables.get_vars(host=raw.manager.get_host("n1"))["ansible_ssh_common_args"] == "-o A=1"


def test_lists_in_provision_are_replaced(tmp_path, hooks):
    inv = write(tmp_path, {"hosts.yml": """
        all:
          vars: {provision: {hypervisor: {cpu_mode: custom, cpu_models: [Haswell, Broadwell]}}}
          hosts:
            n1: {ansible_connection: local, provision: {hypervisor: {cpu_models: [Skylake-Client]}}}
        """})
    (node,) = select_nodes(inventory=str(inv), hooks=hooks).nodes
    assert node.settings["hypervisor"]["cpu_models"] == ["Skylake-Client"]
    assert node.settings["hypervisor"]["cpu_mode"] == "custom"


def test_group_vars_folder_and_extensionless_files(tmp_path, hooks):
    write(tmp_path, {
        "inv": "all:\n  children:\n    compute:\n      hosts:\n        n1: {ansible_connection: local}\n",
        "group_vars/compute/10-hv": "provision: {virt_type: kvm}\n",
        "group_vars/compute/20-libvirt.yaml": "provision: {hypervisor: {libvirt: container}}\n",
    })
    (node,) = select_nodes(inventory=str(tmp_path / "inv"), hooks=hooks).nodes
    assert node.settings["virt_type"] == "kvm"
    assert node.settings["hypervisor"]["libvirt"] == "container"


def test_child_group_beats_parent_and_same_depth_goes_by_name(tmp_path, hooks):
    write(tmp_path, {"hosts.yml": """
        all:
          children:
            a_group:
              vars: {provision: {hypervisor: {cpu_mode: host-model}}}
              hosts: {n1: {ansible_connection: local}}
            b_group:
              vars: {provision: {hypervisor: {cpu_mode: none}}}
              hosts: {n1: {}}
              children:
                c_child:
                  vars: {provision: {virt_type: qemu}}
                  hosts: {n1: {}}
        """})
    (node,) = select_nodes(inventory=str(tmp_path / "hosts.yml"), hooks=hooks).nodes
    assert node.settings["hypervisor"]["cpu_mode"] == "none"  # b_group sorts after a_group
    assert node.settings["virt_type"] == "qemu"


@pytest.mark.parametrize(
    ("pattern", "hosts"),
    [
        (None, ["cmp1", "cmp2", "cmp3", "cmp4", "ctl1", "ctl2"]),
        ("compute", ["cmp1", "cmp2", "cmp3", "cmp4"]),
        ("rack1:ctl1", ["cmp1", "cmp2", "ctl1"]),
        ("compute:!rack2", ["cmp1", "cmp2"]),
        ("compute:&rack2", ["cmp3", "cmp4"]),
        ("cmp*", ["cmp1", "cmp2", "cmp3", "cmp4"]),
        ("rack*:!~cmp[13]", ["cmp2", "cmp4"]),
        ("compute[0]", ["cmp1"]),
        ("all:!compute", ["ctl1", "ctl2"]),
        ("ctl2,cmp3", ["cmp3", "ctl2"]),
    ],
)
def test_limit_patterns(pattern, hosts):
    assert sorted(load_inventory(EXAMPLE).select(pattern)) == hosts


def test_limit_matching_nothing_names_the_groups():
    with pytest.raises(InputError, match=r"--limit 'nope' matches no host in .*; groups: all, compute, control, rack1, rack2"):
        load_inventory(EXAMPLE).select("nope")


def test_show_redacts_secrets(tmp_path, hooks):
    inv = write(tmp_path, {"hosts.yml": """
        all:
          hosts:
            n1: {ansible_connection: local}
        """})
    data = describe_host(inventory=str(inv), host="n1", hooks=hooks)
    assert (data["host"], data["connection"], data["groups"]) == ("n1", "local://", ["ungrouped"])  # as Ansible's group_names
    assert data["provision"]["virt_type"] == "auto"
    assert data["provision"]["storage"] == [] and data["provision"]["network"]["renderer"] == "netplan"
    from provision.inventory.select import redact

    assert redact({"chap": {"username": "u", "password": "s3cret"}, "key_file": "/k", "ceph_key": "AQB"}) == {
        "chap": {"username": "u", "password": "<redacted>"}, "key_file": "/k", "ceph_key": "<redacted>"}


# -- bad input: file, host and field named; nothing else happens ----------------------------------

BAD = [
    ("hosts.yml", "all:\n  hosts:\n    n1: {ansible_connection: local\n",
     r"hosts\.yml: not an inventory Ansible can read:\n  yaml plugin: YAML parsing failed: While parsing a flow mapping did not find expected ',' or '}'"),
    ("hosts.yml", "all:\n  hosts:\n    n1: {provision: {virt_type: kvmm}}\n",
     r"hosts\.yml: host n1: provision\.virt_type: must be one of auto, kvm, qemu \(got 'kvmm'\)"),
    ("hosts.yml", "all:\n  hosts:\n    n1: {provision: {hypervisor: {virt_typo: kvm}}}\n",
     r"host n1: provision\.hypervisor\.virt_typo: unknown key; known keys: cpu_mode, cpu_models, images_type, libvirt, nested, remote, tls(\n|$)"),
    ("hosts.yml", "all:\n  hosts:\n    n1: {provision: {hypervisor: {virt_type: kvm}}}\n",
     r"host n1: provision\.hypervisor\.virt_type: moved to provision\.virt_type \(a core setting now\) \(got 'kvm'\)"),
    ("hosts.yml", "all:\n  hosts:\n    n1: {provision: {hypervisr: {}}}\n",
     r"host n1: provision\.hypervisr: unknown key; known keys: hypervisor, network, pci, remedies, storage, virt_type"),
    ("hosts.yml", "all:\n  hosts:\n    n1: {provision: {hypervisor: {cpu_models: x}}}\n",
     r"host n1: provision\.hypervisor\.cpu_models: input should be a valid list \(got 'x'\)"),
    ("hosts.yml", "all:\n  hosts:\n    n1: {provision: {hypervisor: {cpu_models: [a]}}}\n",
     r"host n1: provision\.hypervisor\.cpu_models: only allowed with cpu_mode custom"),
    ("hosts.yml", "all:\n  hosts:\n    n1: {provision: kvm}\n", r"hosts\.yml: host n1: provision: must be a mapping"),
    ("hosts.yml", "all:\n  hosts: [n1, n2]\n", r"yaml plugin: Invalid \"hosts\" entry for \"all\" group, requires a dictionary"),
    ("hosts.yml", "all:\n  host:\n    n1:\n", r"the inventory has no hosts\n  Skipping unexpected key \(host\) in group \(all\)"),
    ("hosts.yml", "all:\n  hosts:\n    a/b: {}\n", r"hosts\.yml: host 'a/b': must be a host name or an IPv4/IPv6 address; '/' cannot be in one"),
    ("hosts.yml", "all:\n  hosts:\n    '..': {}\n", r"hosts\.yml: host '\.\.': must be a host name or an IPv4/IPv6 address: labels"),
    ("hosts.yml", "all:\n  hosts:\n    n1: {ansible_connection: winrm}\n",
     r"host n1: ansible_connection: must be one of local, ssh, paramiko, docker \(or Ansible's names for them: smart, ansible.builtin.ssh, ...\) \(got 'winrm'\)"),
    ("hosts.yml", "all:\n  hosts:\n    n1: {ansible_port: http}\n", r"host n1: ansible_port: must be a port number"),
    ("hosts.yml", "all:\n  hosts:\n    n1: {ansible_port: 70000}\n",
     r"host n1: ansible_port: must be a port number 1-65535 \(got 70000\)"),
    ("hosts.yml", "all:\n  hosts:\n    n1: {ansible_ssh_private_key_file: AAAAB3NzaC1yc2EAAAADAQABAAABgQC7yK9fake0key0material}\n",
     r"host n1: ansible_ssh_private_key_file: names no key file on this machine \(the value is not shown"),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD, ids=[m[:40] for _, _, m in BAD])
def test_bad_inventories_name_file_host_and_field(tmp_path, hooks, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=message):
        select_nodes(inventory=str(tmp_path / name), hooks=hooks)


def test_error_names_the_group_vars_file_that_set_the_value(tmp_path, hooks):
    write(tmp_path, {"hosts.yml": "all:\n  children:\n    compute:\n      hosts:\n        n1: {}\n",
                     "group_vars/compute.yml": "provision: {virt_type: kvmm}\n"})
    with pytest.raises(InputError, match=r"group_vars/compute\.yml: host n1: provision\.virt_type"):
        select_nodes(inventory=str(tmp_path / "hosts.yml"), hooks=hooks)


def test_every_error_is_reported_at_once(tmp_path, hooks):
    inv = write(tmp_path, {"hosts.yml": """
        all:
          hosts:
            n1: {provision: {virt_type: kvmm}}
            n2: {provision: {hypervisor: {libvirt: docker}}}
        """})
    with pytest.raises(InputError) as err:
        select_nodes(inventory=str(inv), hooks=hooks)
    assert "host n1: provision.virt_type" in str(err.value)
    assert "host n2: provision.hypervisor.libvirt: must be one of host, container (got 'docker')" in str(err.value)


def test_host_vars_for_an_unknown_host_is_a_warning(tmp_path, hooks):
    write(tmp_path, {"hosts.yml": "all:\n  hosts:\n    n1: {ansible_connection: local}\n",
                     "host_vars/n9.yml": "ansible_port: 22\n"})
    selection = select_nodes(inventory=str(tmp_path / "hosts.yml"), hooks=hooks)
    assert [n.name for n in selection.nodes] == ["n1"]
    assert any("host_vars/n9.yml: host n9 is not in the inventory" in w for w in selection.warnings)


def test_unused_vars_of_a_dotted_group_folder_are_named_whole(tmp_path, hooks):
    write(tmp_path, {"hosts.yml": "all:\n  hosts:\n    n1: {ansible_connection: local}\n",
                     "group_vars/rack.1/a.yml": "x: 1\n", "group_vars/rack2.yml": "x: 2\n"})
    warnings = select_nodes(inventory=str(tmp_path / "hosts.yml"), hooks=hooks).warnings
    assert any("group_vars/rack.1: group rack.1 is not in the inventory" in w for w in warnings)
    assert any("group_vars/rack2.yml: group rack2 is not in the inventory" in w for w in warnings)


def test_a_host_vars_folder_that_cannot_be_listed_is_read_as_ansible_reads_it(tmp_path):
    """As an unprivileged user: host_vars/ may be entered (x) but not listed (no r); Ansible opens
    host_vars/n1.yml by its name, and so does provision."""
    base = Path(tempfile.mkdtemp(prefix="provision-test-"))
    try:
        base.chmod(0o755)
        write(base, {"hosts.yml": "all:\n  hosts:\n    n1: {}\n", "host_vars/n1.yml": "ansible_port: 22\n"})
        (base / "host_vars").chmod(0o311)
        said = as_nobody(lambda: load_inventory(str(base / "hosts.yml")).host("n1").vars)
        assert said == "{'ansible_port': 22}"
    finally:
        (base / "host_vars").chmod(0o755)
        shutil.rmtree(base)


def test_missing_inventory():
    with pytest.raises(InputError, match="no-such.yml: no such inventory file or folder"):
        load_inventory("no-such.yml")


def test_forked_validation_reports_every_error_in_inventory_order(tmp_path, hooks):
    from provision.inventory.validate import validate_inventory

    hosts = "\n".join(f"    n{i}: {{ansible_connection: local, provision: {{virt_type: {'kvmm' if i % 3 else 'qemu'}}}}}"
                      for i in range(7))
    inv = write(tmp_path, {"hosts.yml": f"all:\n  hosts:\n{hosts}\n"})
    with pytest.raises(InputError) as err:
        inventory = load_inventory(str(inv))
        validate_inventory(inventory, inventory.select(None), hooks, workers=3)
    lines = str(err.value).splitlines()[1:]
    assert [line.split(": ")[1] for line in lines] == ["host n1", "host n2", "host n4", "host n5"]
    assert all("provision.virt_type: must be one of auto, kvm, qemu (got 'kvmm')" in line for line in lines)


def test_forked_validation_fills_in_settings_and_host_specs(tmp_path, hooks):
    from provision.inventory.validate import validate_inventory

    hosts = "\n".join(f"    n{i}: {{ansible_host: 192.0.2.{i + 1}, ansible_port: {2200 + i}}}" for i in range(5))
    inv = load_inventory(str(write(tmp_path, {"hosts.yml": f"all:\n  hosts:\n{hosts}\n"})))
    checked = validate_inventory(inv, inv.select(None), hooks, workers=2)
    assert [spec.spec for _, spec in checked] == [f"ssh://192.0.2.{i + 1}:{2200 + i}" for i in range(5)]
    assert all(host.settings["virt_type"] == "auto" for host, _ in checked)


def test_a_private_key_pasted_as_the_key_file_is_not_echoed(tmp_path, hooks):
    pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n"
    import yaml

    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"n1": {"ansible_ssh_private_key_file": pem}}}}))
    with pytest.raises(InputError) as err:
        select_nodes(inventory=str(tmp_path / "hosts.yml"), hooks=hooks)
    assert "host n1: ansible_ssh_private_key_file: must be the path of a key file, not the key (the value is not shown)" in str(err.value)
    assert "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ" not in str(err.value)
