"""Memory, disk, clock and ports."""

import pytest

from provision_plugins.clock import time_sync
from provision_plugins.ports import ports_free
from provision_plugins.resources import disk, memory
from tests.nodes import healthy_node

GIB = 1024**3


@pytest.mark.parametrize(("kb", "status"), [(263846912, "pass"), (4 * 1024 * 1024, "warn"), (1024 * 1024, "fail")])
def test_memory(kb, status):
    facts = healthy_node(**{"resources.meminfo": {"path": "/proc/meminfo", "text": f"MemTotal: {kb} kB\n"}})
    assert memory(facts, {}).status == status


def test_memory_unreadable():
    result = memory(healthy_node(**{"resources.meminfo": {"error": "EACCES: Permission denied"}}), {})
    assert result.status == "fail"
    assert result.evidence == {"resources.meminfo": "EACCES: Permission denied"}


@pytest.mark.parametrize(("free", "status"), [(800 * GIB, "pass"), (20 * GIB, "warn"), (1 * GIB, "fail")])
def test_disk(free, status):
    facts = healthy_node(**{"resources.instances_fs": {"path": "/var/lib", "free": free, "total": 1000 * GIB}})
    result = disk(facts, {})
    assert result.status == status
    assert "statvfs /var/lib" in result.evidence


@pytest.mark.parametrize(
    ("state", "status_bits", "processes", "status", "words"),
    [
        (0, 0x2001, ["chronyd"], "pass", "clock synchronised (chronyd)"),
        (5, 0x0041, ["chronyd"], "warn", "chronyd runs but the kernel clock is not yet synchronised"),
        (5, 0x0040, ["sshd"], "warn", "no NTP daemon runs"),
    ],
)
def test_time_sync(state, status_bits, processes, status, words):
    facts = healthy_node(**{"clock.adjtimex": {"state": state, "status": status_bits, "maxerror_us": 0},
                            "node.processes": {"names": processes}})
    result = time_sync(facts, {})
    assert (result.status, words in result.message) == (status, True)


@pytest.mark.parametrize(
    ("ports", "processes", "status", "words"),
    [
        ([22, 16509], ["libvirtd"], "pass", "(libvirt holds its own)"),
        ([22], ["sshd"], "pass", "compute node ports are free"),
        ([5901, 6080], ["libvirtd"], "warn", "ports in use: 5901, 6080"),
        ([16509], ["sshd"], "warn", "ports in use: 16509"),
    ],
)
def test_ports(ports, processes, status, words):
    facts = healthy_node(**{"ports.listening": {"ports": ports}, "node.processes": {"names": processes}})
    result = ports_free(facts, {})
    assert (result.status, words in result.message) == (status, True), result.message
