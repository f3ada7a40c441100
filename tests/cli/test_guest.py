"""provision guest against the real libvirtd and QEMU (TCG here), every change checked with virsh."""

import json
import os
import subprocess

import pytest
from lxml import etree

from provision.guests.canary import MARKER, find_canary
from tests.guests import PREFIX, SecondLibvirtd, TestPool, domains, domstate, remove_test_guests, virsh, wait_for_console
from tests.validators import virt_xml_validate

pytestmark = pytest.mark.libvirt


@pytest.fixture(scope="module")
def canary(libvirtd):
    return find_canary()


@pytest.fixture(autouse=True)
def no_leftover_guests(libvirtd):
    remove_test_guests()
    yield
    remove_test_guests()


@pytest.fixture(scope="module")
def other_node(libvirtd):
    daemon = SecondLibvirtd()
    yield daemon
    daemon.stop()


@pytest.fixture
def pool(libvirtd):
    made = TestPool()
    yield made
    made.remove()


def boot_args(canary, name):
    return ["guest", "create", name, "--kernel", str(canary.kernel), "--initrd", str(canary.initrd),
            "--cmdline", canary.cmdline]


def decided_virt_type(cli) -> str:
    return json.loads(cli("preflight", "-o", "json").stdout)["hosts"][0]["decision"]["virt_type"]


def test_create_boots_the_canary_with_the_nodes_decided_type(cli, canary):
    name = f"{PREFIX}boot"
    result = cli(*boot_args(canary, name))
    assert result.exit_code == 0, result.output
    assert domstate(name) == "running"
    xml = etree.fromstring(virsh("dumpxml", name).stdout.encode())
    assert xml.get("type") == decided_virt_type(cli)  # never kvm on a node that decided qemu
    assert MARKER in wait_for_console(name, MARKER)
    assert MARKER in cli("guest", "console", name).stdout
    listed = json.loads(cli("guest", "list", "-o", "json").stdout)["guests"]
    assert {"name": name, "state": "running"}.items() <= next(g for g in listed if g["name"] == name).items()


def test_print_xml_validates_and_follows_virt_type(cli, canary, tmp_path):
    result = cli(*boot_args(canary, f"{PREFIX}xml"), "--virt-type", "qemu", "--print-xml")
    xml = tmp_path / "domain.xml"
    xml.write_text(result.stdout)
    assert virt_xml_validate(xml).returncode == 0
    assert etree.parse(str(xml)).getroot().get("type") == "qemu"
    kvm = cli(*boot_args(canary, f"{PREFIX}xml"), "--virt-type", "kvm", "--print-xml")
    if decided_virt_type(cli) == "kvm":
        assert etree.fromstring(kvm.stdout.encode()).get("type") == "kvm"
    else:  # this node decided qemu: kvm is refused, with the decision's reasons
        assert kvm.exit_code == 2
        assert "virt_type kvm was asked for, but localhost decided qemu: CPU shows neither vmx nor svm" in kvm.stderr
    assert domstate(f"{PREFIX}xml") == "absent"


def test_a_name_in_use_is_refused_and_the_guest_left_untouched(cli, canary):
    name = f"{PREFIX}dup"
    cli(*boot_args(canary, name))
    before = virsh("dumpxml", name, "--inactive").stdout
    result = cli(*boot_args(canary, name), "--memory", "128")
    assert result.exit_code == 1
    assert f"guest '{name}' already exists at qemu:///system (running); it was left untouched" in result.stderr
    assert domstate(name) == "running" and virsh("dumpxml", name, "--inactive").stdout == before


def test_missing_kernel_is_exit_2_and_defines_nothing(cli, canary):
    result = cli("guest", "create", f"{PREFIX}nokernel", "--kernel", "/nonexistent/vmlinuz", "--initrd", str(canary.initrd))
    assert result.exit_code == 2
    assert "--kernel /nonexistent/vmlinuz: no such file" in result.stderr
    assert domains() == []


def test_more_memory_than_the_node_has_is_refused(cli, canary):
    result = cli(*boot_args(canary, f"{PREFIX}huge"), "--memory", str(64 * 1024 * 1024))
    assert result.exit_code == 2
    assert "MiB is more than the node has" in result.stderr
    assert domains() == []


def test_unreachable_uri(cli):
    result = cli("guest", "list", "--connect", "qemu+tcp://127.0.0.1:1/system")
    assert result.exit_code == 1
    assert "cannot connect to qemu+tcp://127.0.0.1:1/system" in result.stderr


def test_a_libvirt_error_in_the_middle_of_create_rolls_back(cli, canary, pool):
    # the disk volume is made and the guest defined; starting it fails on the missing network
    result = cli(*boot_args(canary, f"{PREFIX}rollback"), "--disk", f"{pool.name}:16M", "--network", "pvtest-nonet")
    assert result.exit_code == 1
    assert "creating pvtest-rollback failed:" in result.stderr and "pvtest-nonet" in result.stderr
    assert "rolled back: guest pvtest-rollback undefined, volume pvtest-rollback-disk1.qcow2 deleted" in result.stderr
    assert domains() == [] and pool.volumes() == []


def test_life_cycle(cli, canary, tmp_path):
    name = f"{PREFIX}life"
    cli(*boot_args(canary, name))
    assert MARKER in wait_for_console(name, MARKER)
    assert cli("guest", "pause", name).exit_code == 0 and domstate(name) == "paused"
    assert cli("guest", "resume", name).exit_code == 0 and domstate(name) == "running"
    saved = tmp_path / "life.save"
    assert "saved (stopped)" in cli("guest", "save", name, str(saved)).stdout
    assert domstate(name) == "shut off" and saved.stat().st_size > 0
    assert "restored (running)" in cli("guest", "restore", str(saved)).stdout
    assert domstate(name) == "running"
    result = cli("guest", "shutdown", name, "--timeout", "20")
    assert "shut down (graceful)" in result.stdout, result.output
    assert domstate(name) == "shut off"
    assert "started (running)" in cli("guest", "start", name).stdout and domstate(name) == "running"
    assert "destroyed" in cli("guest", "destroy", name).stdout and domstate(name) == "shut off"
    assert cli("guest", "destroy", name).exit_code == 1  # not running: a clear error
    assert cli("guest", "undefine", name).exit_code == 0 and domstate(name) == "absent"


def test_shutdown_is_forced_when_the_guest_ignores_the_power_button(cli, canary):
    name = f"{PREFIX}stubborn"
    args = boot_args(canary, name)
    args[-1] += " acpi=off"  # the kernel never hears the power button, however fast the node is
    cli(*args)
    assert MARKER in wait_for_console(name, MARKER)  # booted: ignoring the button is not a matter of timing
    result = cli("guest", "shutdown", name, "--timeout", "3")
    assert "shut down (forced): no power-off within 3 s, so it was destroyed" in result.stdout, result.output
    assert domstate(name) == "shut off"


def test_hot_plug_disk_vcpus_memory(cli, canary, pool):
    name = f"{PREFIX}plug"
    cli(*boot_args(canary, name), "--vcpus", "1", "--max-vcpus", "2")
    assert MARKER in wait_for_console(name, MARKER)  # its virtio drivers are loaded by now
    attach = cli("guest", "attach-disk", name, "--disk", f"{pool.name}:16M")
    assert attach.exit_code == 0 and "attached vdb" in attach.stdout and "(live)" in attach.stdout
    assert "vdb" in virsh("domblklist", name).stdout
    assert "vdb" in virsh("dumpxml", name, "--inactive").stdout
    detach = cli("guest", "detach-disk", name, "--target", "vdb")
    assert detach.exit_code == 0
    assert "vdb" not in virsh("dumpxml", name, "--inactive").stdout  # gone from the config either way
    if "(live)" in detach.stdout:
        assert "vdb" not in virsh("domblklist", name).stdout
    else:
        assert "has not released the device yet" in detach.stdout
    assert "2 vCPUs (live)" in cli("guest", "set-vcpus", name, "2").stdout
    assert virsh("vcpucount", name, "--live", "--active").stdout.strip() == "2"
    assert "4 vCPUs (next boot)" in cli("guest", "set-vcpus", name, "4").stdout
    assert virsh("vcpucount", name, "--config", "--maximum").stdout.strip() == "4"
    assert "128 MiB (live)" in cli("guest", "set-memory", name, "128").stdout
    live = etree.fromstring(virsh("dumpxml", name).stdout.encode())
    assert live.findtext("currentMemory") == "131072"  # the balloon target (KiB)
    cli("guest", "destroy", name)
    assert cli("guest", "undefine", name, "--remove-storage").exit_code == 0
    # the detached disk's volume is kept (detach never deletes data); nothing else is left
    assert len(pool.volumes()) == 1 and pool.volumes()[0].startswith(f"{name}-vdb-")


def test_nic_on_a_stopped_guest_changes_the_next_boot(cli, canary, libvirtd):
    # a defined (never started) bridged network: no bridge or tap is made on this machine
    net = f"{PREFIX}net"
    xml = f"<network><name>{net}</name><forward mode='bridge'/><bridge name='pvtestbr0'/></network>"
    path = f"/tmp/{net}.xml"
    open(path, "w").write(xml)
    virsh("net-define", path, check=True)
    name = f"{PREFIX}nic"
    try:
        cli(*boot_args(canary, name))
        cli("guest", "destroy", name)
        result = cli("guest", "attach-nic", name, "--network", net)
        assert result.exit_code == 0 and "(next boot): the guest is not running" in result.stdout
        import re

        mac = re.search(r"\(([0-9a-f:]{17})\)", result.stdout).group(1)
        assert mac in virsh("dumpxml", name, "--inactive").stdout
        assert "(next boot)" in cli("guest", "detach-nic", name, "--mac", mac).stdout
        assert mac not in virsh("dumpxml", name, "--inactive").stdout
        missing = cli("guest", "attach-nic", name, "--network", "pvtest-none")
        assert missing.exit_code == 2 and "network 'pvtest-none' does not exist" in missing.stderr
    finally:
        virsh("net-undefine", net)
        os.unlink(path)


def test_offline_migration_to_another_libvirtd(cli, canary, other_node):
    name = f"{PREFIX}mig"
    cli(*boot_args(canary, name))
    running = cli("guest", "migrate", name, "--to", other_node.uri, "--offline")
    assert running.exit_code == 1 and "is running: shut it down for an offline migration" in running.stderr
    assert domstate(name) == "running"
    cli("guest", "destroy", name)
    result = cli("guest", "migrate", name, "--to", other_node.uri)
    assert result.exit_code == 0 and f"migrated to {other_node.uri} (offline)" in result.stdout
    assert domstate(name) == "absent"
    assert domstate(name, uri=other_node.uri) == "shut off"


def test_live_migration_to_another_libvirtd(cli, canary, other_node):
    name = f"{PREFIX}live"
    cli(*boot_args(canary, name))
    assert MARKER in wait_for_console(name, MARKER)
    result = cli("guest", "migrate", name, "--to", other_node.uri)
    assert result.exit_code == 0, result.output
    assert f"migrated to {other_node.uri} (live)" in result.stdout
    assert domstate(name) == "absent"
    assert domstate(name, uri=other_node.uri) == "running"
    taken = cli("guest", "migrate", name, "--to", other_node.uri, "--connect", other_node.uri)
    assert taken.exit_code == 1 and "already has a guest named" in taken.stderr


def test_image_boots_through_an_overlay_in_the_pool(cli, pool, tmp_path):
    base = os.path.join(pool.path, "base.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", base, "64M"], check=True)
    name = f"{PREFIX}img"
    result = cli("guest", "create", name, "--image", base, "--pool", pool.name)
    assert result.exit_code == 0, result.output
    vol = virsh("vol-dumpxml", f"{name}-root.qcow2", "--pool", pool.name).stdout
    assert f"<path>{base}</path>" in vol and "<format type='qcow2'/>" in vol
    cli("guest", "destroy", name)
    cli("guest", "undefine", name, "--remove-storage")
    assert pool.volumes() == ["base.qcow2"]  # the overlay went, the image stayed


def test_guest_from_an_inventory_node_uses_its_pinned_virt_type(cli, canary, tmp_path):
    inv = tmp_path / "site.yml"
    inv.write_text("all:\n  hosts:\n    n1: {ansible_connection: local, provision: {virt_type: kvm}}\n")
    result = cli(*boot_args(canary, f"{PREFIX}inv"), "-i", str(inv))
    if decided_virt_type(cli) == "kvm":
        assert result.exit_code == 0 and etree.fromstring(virsh("dumpxml", f"{PREFIX}inv").stdout.encode()).get("type") == "kvm"
    else:  # pinned kvm on a node that decided qemu: refused before anything is defined
        assert result.exit_code == 2 and "virt_type kvm was asked for, but n1 decided qemu" in result.stderr
        assert domains() == []
    inv.write_text("all:\n  hosts:\n    n1: {ansible_connection: local, provision: {virt_type: qemu}}\n")
    result = cli(*boot_args(canary, f"{PREFIX}inv"), "-i", str(inv), "--print-xml")
    assert etree.fromstring(result.stdout.encode()).get("type") == "qemu"


def test_a_uri_no_plugin_manages_is_exit_2(cli):
    result = cli("guest", "list", "--connect", "vbox:///session")
    assert result.exit_code == 2
    assert "provision: error: --connect 'vbox:///session': no plugin manages guests at this URI" in result.stderr


def test_restore_from_a_missing_or_foreign_file_is_a_clear_error(cli, tmp_path):
    missing = tmp_path / "gone.save"
    result = cli("guest", "restore", str(missing))
    assert result.exit_code == 2 and f"{missing}: no such saved guest file" in result.stderr
    junk = tmp_path / "junk.save"
    junk.write_text("not a libvirt save image\n")
    result = cli("guest", "restore", str(junk))
    assert result.exit_code == 1 and f"provision: error: restore from {junk} failed: " in result.stderr
    assert domains() == []  # nothing was started


def test_an_image_qemu_img_cannot_read_is_exit_2_and_makes_nothing(cli, pool, tmp_path):
    bad = tmp_path / "broken.qcow2"  # outside every pool: qemu-img is asked what it holds
    bad.write_bytes(b"QFI\xfb" + (99).to_bytes(4, "big") + b"\0" * 504)  # qcow2's magic, a version that does not exist
    result = cli("guest", "create", f"{PREFIX}broken", "--image", str(bad), "--pool", pool.name)
    assert result.exit_code == 2, result.output
    assert f"--image {bad}: qemu-img cannot read it: qemu-img: Could not open '{bad}': Unsupported qcow2 version 99" in result.stderr
    assert domains() == [] and pool.volumes() == []


def test_a_pool_that_is_not_started_is_named_with_the_command_to_start_it(cli, canary, libvirtd, tmp_path):
    name = f"{PREFIX}idle-pool"
    virsh("pool-define-as", name, "dir", "--target", str(tmp_path / "idle"), check=True)
    try:
        result = cli(*boot_args(canary, f"{PREFIX}idle"), "--disk", f"{name}:16M")
        assert result.exit_code == 2
        assert f"storage pool {name!r} at qemu:///system is not active: virsh pool-start {name}" in result.stderr
        assert domains() == []
    finally:
        virsh("pool-undefine", name)


def define(tmp_path, name: str, devices: str = "") -> None:
    xml = tmp_path / f"{name}.xml"
    xml.write_text(f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory>"
                   f"<os><type>hvm</type></os><devices>{devices}</devices></domain>")
    virsh("define", str(xml), check=True)


def test_console_of_a_guest_without_a_log_or_never_started(cli, libvirtd, tmp_path):
    define(tmp_path, f"{PREFIX}nolog")
    result = cli("guest", "console", f"{PREFIX}nolog")
    assert result.exit_code == 2 and f"provision: error: {PREFIX}nolog has no serial console log" in result.stderr
    log = f"/var/log/libvirt/qemu/{PREFIX}never-console.log"
    define(tmp_path, f"{PREFIX}never", f"<serial type='pty'><log file='{log}'/></serial>")
    result = cli("guest", "console", f"{PREFIX}never")
    assert result.exit_code == 2 and f"provision: error: cannot read {log} on localhost: " in result.stderr
