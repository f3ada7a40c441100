"""QEMU and libvirt: presence, versions against nova's minimums, host or containerised daemon."""

import pytest

from provision_plugins.libvirt import libvirt_daemon, libvirt_version
from provision_plugins.qemu import qemu_binary, qemu_version
from tests.nodes import ENOENT, healthy_node


def run(program, stdout, rc=0):
    return {"program": program, "rc": rc, "stdout": stdout, "stderr": ""}


@pytest.mark.parametrize(
    ("answer", "status", "words"),
    [
        (run("/usr/bin/qemu-system-x86_64", "QEMU emulator version 7.2.15 (Debian)\n"), "pass", "QEMU 7.2.15 >= 6.2.0"),
        (run("/usr/bin/qemu-system-x86_64", "QEMU emulator version 6.2.0\n"), "pass", "QEMU 6.2.0 >= 6.2.0"),
        (run("/usr/libexec/qemu-kvm", "QEMU emulator version 4.2.0 (qemu-kvm-4.2.0-48.module+el8)\n"), "fail",
         "QEMU 4.2.0 is older than nova's minimum 6.2.0"),
        (run("/usr/bin/qemu-system-x86_64", "garbage\n"), "fail", "cannot read QEMU's version"),
        ({"error": "ENOENT: not found: qemu-system-x86_64, /usr/libexec/qemu-kvm"}, "skip", "no QEMU to ask"),
    ],
)
def test_qemu_version(answer, status, words):
    result = qemu_version(healthy_node(**{"qemu.version": answer}), {})
    assert (result.status, words in result.message) == (status, True), result.message


def test_qemu_binary_missing_names_the_package():
    result = qemu_binary(healthy_node(**{"qemu.version": {"error": "ENOENT: not found: qemu-system-x86_64"}}), {})
    assert result.status == "fail"
    assert "apt-get install qemu-system-x86" in result.remedy


@pytest.mark.parametrize(
    ("stdout", "status", "words"),
    [
        ("libvirtd (libvirt) 9.0.0\n", "pass", "libvirt 9.0.0 >= 8.0.0"),
        ("libvirtd (libvirt) 6.0.0\n", "fail", "libvirt 6.0.0 is older than nova's minimum 8.0.0"),
    ],
)
def test_libvirt_version(stdout, status, words):
    result = libvirt_version(healthy_node(**{"libvirt.version": run("/usr/sbin/libvirtd", stdout)}), {})
    assert (result.status, words in result.message) == (status, True)


def test_libvirt_missing_fails_on_host_and_skips_in_container_mode():
    facts = healthy_node(**{"libvirt.version": {"error": "ENOENT: not found: libvirtd, virtqemud"}})
    assert libvirt_version(facts, {}).status == "fail"
    assert libvirt_version(facts, {"hypervisor": {"libvirt": "container"}}).status == "skip"


def test_host_libvirtd_conflicts_with_containerised_libvirt():
    container = {"hypervisor": {"libvirt": "container"}}
    result = libvirt_daemon(healthy_node(), container)
    assert result.status == "fail"
    assert "libvirtd runs on the host, but the inventory says libvirt runs in a container" in result.message
    quiet = healthy_node(**{"node.processes": {"names": ["sshd"]}})
    assert libvirt_daemon(quiet, container).status == "pass"
    assert libvirt_daemon(quiet, {}).status == "fail"
    assert libvirt_daemon(healthy_node(**{"libvirt.socket.0": ENOENT}), {}).status == "warn"


MODULE_GLOBS = ("/usr/lib/*/qemu/*.so", "/usr/lib64/qemu-kvm/*.so", "/usr/lib64/qemu/*.so", "/usr/lib/qemu/*.so")


def qemu_modules(*names: str, folder: str = "/usr/lib/*/qemu", real: str = "/usr/lib/x86_64-linux-gnu/qemu") -> dict:
    globs = {g: [] for g in MODULE_GLOBS}
    globs[f"{folder}/*.so"] = [f"{real}/{n}.so" for n in names]
    return {"globs": globs}


def formats(listed: str) -> dict:
    return {"program": "/usr/bin/qemu-system-x86_64", "rc": 0, "stdout": f"Supported formats: {listed}\n", "stderr": ""}


@pytest.mark.parametrize(
    ("modules", "listed", "has", "how"),
    [
        (qemu_modules("accel-tcg-x86_64", "block-rbd"), formats("qcow2 raw rbd"), True,
         "QEMU's rbd driver is installed (/usr/lib/x86_64-linux-gnu/qemu/block-rbd.so)"),
        # Debian without qemu-block-extra: format=help still names rbd, the module is not there
        (qemu_modules("accel-tcg-x86_64", "ui-curses"), formats("qcow2 raw rbd"), False,
         "QEMU's block drivers are loadable modules (/usr/lib/x86_64-linux-gnu/qemu) and block-rbd.so is not installed"),
        (qemu_modules("block-rbd", folder="/usr/lib64/qemu-kvm", real="/usr/lib64/qemu-kvm"), formats("qcow2 raw"), True,
         "QEMU's rbd driver is installed (/usr/lib64/qemu-kvm/block-rbd.so)"),
        (qemu_modules(), formats("qcow2 raw rbd"), True,
         "QEMU is built without loadable modules and has the rbd driver (-drive format=help)"),
        (qemu_modules(), formats("qcow2 raw"), False,
         "QEMU is built without loadable modules and lacks the rbd driver (-drive format=help)"),
        (qemu_modules(), {"error": "ENOENT: not found: qemu-system-x86_64"}, False,
         "cannot tell: no QEMU modules found and no QEMU to ask (ENOENT: not found: qemu-system-x86_64)"),
    ],
    ids=["module", "module-missing", "rhel-module", "built-in", "built-without", "no-qemu"],
)
def test_qemu_block_driver_is_read_from_its_module_or_a_non_modular_build(modules, listed, has, how):
    from provision_plugins.qemu import block_driver

    assert block_driver(healthy_node(**{"qemu.modules": modules, "qemu.formats": listed}), "rbd") == (has, how)


def test_qemu_block_driver_on_this_machine_matches_its_module_files():
    """Here QEMU is Debian's modular build: the answer follows block-rbd.so being installed."""
    import glob

    from provision.plugins import default_hooks
    from provision.remote.hosts import parse_host_spec
    from provision.remote.probe import gather_facts
    from provision_plugins.qemu import block_driver

    facts = gather_facts(parse_host_spec("local://"), default_hooks().probe_operations)
    modules = [m for d in ("/usr/lib/*/qemu", "/usr/lib64/qemu-kvm", "/usr/lib64/qemu", "/usr/lib/qemu") for m in glob.glob(f"{d}/*.so")]
    if not modules:
        pytest.skip("QEMU here is not built with loadable modules")
    has, how = block_driver(facts, "rbd")
    assert has == any(m.endswith("/block-rbd.so") for m in modules), how


def test_a_version_from_libvirts_cache_says_so_in_the_evidence():
    answer = {"program": "/usr/bin/qemu-system-x86_64", "rc": 0, "version": "5.2.0", "cache": "/var/cache/x.xml"}
    result = qemu_version(healthy_node(**{"qemu.version": answer}), {})
    assert (result.status, result.message) == ("fail", "QEMU 5.2.0 is older than nova's minimum 6.2.0")
    assert result.evidence == {"/usr/bin/qemu-system-x86_64": "5.2.0 (libvirt's capabilities cache, /var/cache/x.xml)"}
    answer = {"program": "/usr/sbin/libvirtd", "rc": 0, "version": "9.0.0", "cache": "/var/cache/x.xml"}
    assert libvirt_version(healthy_node(**{"libvirt.version": answer}), {}).message == "libvirt 9.0.0 >= 8.0.0"
