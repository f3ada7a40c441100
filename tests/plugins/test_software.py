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
