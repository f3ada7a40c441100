"""Recorded facts of nodes, as the probe returns them, for pure unit tests of checks.

``healthy_node()`` is an Intel VT-x compute node where everything passes;
scenarios override single answers: ``healthy_node(**{"kvm.device": ENOENT})``.
"""

from __future__ import annotations

from pathlib import Path

from provision.facts import Facts

CPUINFO = Path(__file__).parent / "fixtures" / "cpuinfo"
ENOENT = {"error": "ENOENT: No such file or directory"}
KERNEL_CONFIG = "\n".join(
    f"CONFIG_{s}=y" for s in (
        "KVM", "KVM_INTEL", "KVM_AMD", "BRIDGE", "VLAN_8021Q", "NF_NAT", "NFT_NAT", "NFT_MASQ", "BLK_DEV_DM",
        "NFS_FS", "ISCSI_TCP", "BLK_DEV_RBD", "TUN", "VHOST_NET",
    )
)
PASSWD = "root:x:0:0:root:/root:/bin/bash\nlibvirt-qemu:x:64055:107:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin\n"
GROUP = "root:x:0:\nkvm:x:107:\nlibvirt:x:106:ops\n"


QEMU_MODULES = "/usr/lib/x86_64-linux-gnu/qemu"
QEMU_FORMATS = "blkdebug file host_device iscsi luks nbd qcow2 raw rbd ssh"
BACKENDS = ("/usr/lib/*/libvirt/storage-backend", "/usr/lib64/libvirt/storage-backend")


def installed(programs: list[str], backends: list[str], *, missing: tuple[str, ...] = ()) -> dict:
    """The answer of an ``installed`` probe on a Debian node with these programs and libvirt
    storage backends; names in ``missing`` are absent."""
    globs = {}
    for name in backends:
        for folder in BACKENDS:
            found = folder.startswith("/usr/lib/*") and name not in missing
            globs[f"{folder}/libvirt_storage_backend_{name}.so"] = (
                [f"/usr/lib/x86_64-linux-gnu/libvirt/storage-backend/libvirt_storage_backend_{name}.so"] if found else [])
    return {"programs": {p: None if p in missing else f"/usr/sbin/{p}" for p in programs}, "globs": globs}


def cpuinfo(name: str) -> dict:
    return {"path": "/proc/cpuinfo", "text": (CPUINFO / name).read_text()}


# the probe's vCPU run as a working KVM answers it (recorded here: out 0x3f8 = 0x42, then hlt)
KVM_RAN = {"exits": [{"kind": "io", "port": 0x3F8, "out": True, "byte": 0x42}, {"kind": "hlt"}], "ms": 1.1}


def healthy_node(machine: str = "x86_64", cpu: str = "intel_vtx", **overrides) -> Facts:
    answers = {
        "_probe": {"uid": 0, "python": "3.11.2", "machine": machine, "release": "6.1.0-28-amd64"},
        "cpu.info": cpuinfo(cpu),
        "kvm.device": {"path": "/dev/kvm", "mode": 0o660, "uid": 0, "gid": 107, "kind": "char"},
        "kvm.api": {"path": "/dev/kvm", "results": [{"ret": 12}, {"ret": 5}]},
        "kvm.run": KVM_RAN,
        "kvm.qemu_conf": {"path": "/etc/libvirt/qemu.conf", "text": '#user = "libvirt-qemu"\n'},
        "kvm.passwd": {"path": "/etc/passwd", "text": PASSWD},
        "kvm.group": {"path": "/etc/group", "text": GROUP},
        "kvm.nested_intel": {"path": "/sys/module/kvm_intel/parameters/nested", "text": "Y\n"},
        "kvm.nested_amd": ENOENT,
        "kernel.modules": {"path": "/proc/modules", "text": "kvm_intel 409600 0 - Live 0x0\nkvm 1126400 1 kvm_intel, Live 0x0\n"},
        "kernel.sys_module": {"path": "/sys/module", "names": ["bridge", "kvm", "kvm_intel", "tun"]},
        "kernel.filesystems": {"path": "/proc/filesystems", "text": "nodev\tsysfs\n\text4\nnodev\tnfs\nnodev\tnfs4\n"},
        "kernel.config": {"path": "/boot/config-6.1.0-28-amd64", "text": KERNEL_CONFIG},
        "kernel.modules_dep": ENOENT,
        "kernel.modules_builtin": ENOENT,
        "host.hypervisor_type": ENOENT,
        "host.proc_xen": {"path": "/proc/xen", "exists": False},
        "host.detect_virt": {"program": "/usr/bin/systemd-detect-virt", "rc": 1, "stdout": "none\n", "stderr": ""},
        "host.dmi.sys_vendor": {"path": "/sys/class/dmi/id/sys_vendor", "text": "Dell Inc.\n"},
        "host.dmi.product_name": {"path": "/sys/class/dmi/id/product_name", "text": "PowerEdge R640\n"},
        "host.dmi.bios_vendor": {"path": "/sys/class/dmi/id/bios_vendor", "text": "Dell Inc.\n"},
        "host.dmi.board_vendor": {"path": "/sys/class/dmi/id/board_vendor", "text": "Dell Inc.\n"},
        "host.tun": {"path": "/dev/net/tun", "mode": 0o666, "uid": 0, "gid": 0, "kind": "char"},
        "host.vhost_net": {"path": "/dev/vhost-net", "mode": 0o660, "uid": 0, "gid": 107, "kind": "char"},
        "host.cgroup2_controllers": {"path": "/sys/fs/cgroup/cgroup.controllers",
                                     "text": "cpuset cpu io memory hugetlb pids rdma misc\n"},
        "host.mounts": {"path": "/proc/self/mounts", "text": "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n"},
        "host.iommu_groups": {"path": "/sys/kernel/iommu_groups", "names": ["0", "1", "2"]},
        "host.cmdline": {"path": "/proc/cmdline", "text": "BOOT_IMAGE=/vmlinuz intel_iommu=on\n"},
        "qemu.version": {"program": "/usr/bin/qemu-system-x86_64", "rc": 0,
                         "stdout": "QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u12)\n", "stderr": ""},
        "libvirt.socket.0": {"path": "/run/libvirt/libvirt-sock", "mode": 0o666, "uid": 0, "gid": 0, "kind": "other"},
        "libvirt.socket.1": ENOENT,
        "libvirt.version": {"program": "/usr/sbin/libvirtd", "rc": 0, "stdout": "libvirtd (libvirt) 9.0.0\n", "stderr": ""},
        "node.processes": {"names": ["chronyd", "libvirtd", "sshd", "systemd", "virtlogd"]},
        "resources.meminfo": {"path": "/proc/meminfo", "text": "MemTotal:       263846912 kB\nMemFree: 1 kB\n"},
        "resources.instances_fs": {"path": "/var/lib", "free": 800 * 1024**3, "total": 1000 * 1024**3},
        "clock.adjtimex": {"state": 0, "status": 0x2001, "maxerror_us": 16000},
        "ports.listening": {"ports": [22, 16509]},
        "qemu.modules": {"globs": {f"{d}/*.so": [] for d in ("/usr/lib/*/qemu", "/usr/lib64/qemu-kvm", "/usr/lib64/qemu", "/usr/lib/qemu")}
                         | {"/usr/lib/*/qemu/*.so": [f"{QEMU_MODULES}/{m}.so" for m in ("accel-tcg-x86_64", "block-iscsi", "block-rbd")]}},
        "qemu.formats": {"program": "/usr/bin/qemu-system-x86_64", "rc": 0, "stdout": f"Supported formats: {QEMU_FORMATS}\n", "stderr": ""},
        "storage.nfs": installed(["mount.nfs"], ["fs"]),
        "storage.lvm": installed(["pvcreate", "vgcreate", "lvcreate"], ["logical"]),
        "storage.iscsi": installed(["iscsiadm"], ["iscsi", "iscsi-direct"]),
        "storage.rbd": installed([], ["rbd"]),
        "network.renderer": {"programs": {"netplan": "/usr/sbin/netplan"},
                             "globs": {"/lib/systemd/systemd-networkd": ["/lib/systemd/systemd-networkd"],
                                       "/usr/lib/systemd/systemd-networkd": ["/usr/lib/systemd/systemd-networkd"]}},
        "network.nftables": {"programs": {"nft": "/usr/sbin/nft"}, "globs": {}},
    }
    answers.update(overrides)
    return Facts(answers)
