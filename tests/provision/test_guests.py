"""Guest specs and their domain XML, validated by libvirt's schema."""

import pytest
from lxml import etree

from provision.errors import InputError
from provision.guests import DiskSpec, GuestSpec, parse_disk, parse_size, render_domain_xml


@pytest.mark.parametrize(("arch", "machine", "cpu"), [("x86_64", "pc", "host-model"), ("aarch64", "virt", "host-passthrough")])
def test_domain_xml_per_architecture_validates(arch, machine, cpu):
    spec = GuestSpec("g1", "kvm", arch=arch, memory_mib=512, vcpus=2, max_vcpus=4, kernel="/boot/vmlinuz",
                     initrd="/boot/initrd", cmdline="console=ttyS0 a&b", networks=("default",),
                     disks=(DiskSpec("pool", "g1-root.qcow2", "vda"),))
    root = etree.fromstring(render_domain_xml(spec).encode())  # render_domain_xml raises if the schema refuses it
    assert root.get("type") == "kvm"
    assert root.find("os/type").get("machine") == machine and root.find("cpu").get("mode") == cpu
    assert root.findtext("os/cmdline") == "console=ttyS0 a&b"
    assert root.find("vcpu").get("current") == "2" and root.findtext("vcpu") == "4"
    assert root.find("devices/disk/source").get("volume") == "g1-root.qcow2"


def test_tcg_domain_has_no_host_cpu():
    root = etree.fromstring(render_domain_xml(GuestSpec("g1", "qemu", kernel="/k", initrd="/i")).encode())
    assert root.get("type") == "qemu" and root.find("cpu") is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "bad name"}, "guest name 'bad name'"),
        ({"virt_type": "xen"}, "virt_type 'xen': must be kvm or qemu"),
        ({"kernel": None}, "give --image PATH, or --kernel PATH with --initrd PATH"),
        ({"image": "/img.qcow2"}, "give --image PATH, or --kernel PATH with --initrd PATH"),
        ({"initrd": None}, "--kernel needs --initrd"),
        ({"memory_mib": 8}, "--memory must be at least 16 MiB"),
    ],
)
def test_bad_specs(kwargs, message):
    base = {"name": "g1", "virt_type": "qemu", "kernel": "/k", "initrd": "/i"}
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        GuestSpec(**{**base, **kwargs})


def test_sizes_and_disks():
    assert parse_size("512M") == 512 * 1024**2 and parse_size("2G") == 2 * 1024**3 and parse_size("64") == 64 * 1024**2
    assert parse_disk("default:1G") == ("default", 1024**3)
    with pytest.raises(InputError, match="expected POOL:SIZE"):
        parse_disk("1G")
    with pytest.raises(InputError, match="size 'lots'"):
        parse_disk("default:lots")
