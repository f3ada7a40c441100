"""Kernel features: built in, a module (loaded or available), or absent."""

import pytest

from provision.kernel import Needs, kernel_check, kernel_feature
from tests.nodes import ENOENT, healthy_node

PVM_CONFIG = {"path": "/proc/config.gz", "text": "CONFIG_BRIDGE=y\n# CONFIG_VLAN_8021Q is not set\nCONFIG_NF_NAT=m\n"}


def facts(**kw):
    base = {"kernel.modules": ENOENT, "kernel.sys_module": {"path": "/sys/module", "names": []},
            "kernel.filesystems": {"path": "/proc/filesystems", "text": "nodev\tsysfs\n"}, "kernel.config": PVM_CONFIG}
    return healthy_node(**{**base, **kw})


@pytest.mark.parametrize(
    ("overrides", "config", "modules", "fs", "state"),
    [
        ({}, ("CONFIG_BRIDGE",), ("bridge",), (), "builtin"),
        ({}, ("CONFIG_VLAN_8021Q",), ("8021q",), (), "absent"),
        # the probe keeps only the lines asked for: none of them set is absent, not unknown
        ({"kernel.config": {"path": "/proc/config.gz", "text": ""}}, ("CONFIG_RBD",), ("rbd",), (), "absent"),
        ({"kernel.modules": {"path": "/proc/modules", "text": "8021q 40960 0 - Live 0x0\n"}},
         ("CONFIG_VLAN_8021Q",), ("8021q",), (), "loaded"),
        ({"kernel.modules_dep": {"path": "modules.dep", "text": "kernel/net/8021q/8021q.ko.xz: kernel/net/802/garp.ko.xz\n"}},
         ("CONFIG_VLAN_8021Q",), ("8021q",), (), "module"),
        ({"kernel.filesystems": {"path": "/proc/filesystems", "text": "nodev\tnfs4\n"}},
         ("CONFIG_NFS_FS",), ("nfs",), ("nfs", "nfs4"), "builtin"),
        # =m but no modules installed for the running kernel: it cannot be loaded
        ({}, ("CONFIG_NF_NAT",), ("nf_nat",), (), "absent"),
        ({"kernel.modules_dep": {"path": "modules.dep", "text": ""}}, ("CONFIG_NF_NAT",), ("nf_nat",), (), "module"),
        ({"kernel.config": {"error": "none readable: /proc/config.gz (ENOENT)"}}, ("CONFIG_BRIDGE",), ("bridge",), (),
         "unknown"),
    ],
)
def test_kernel_feature_states(overrides, config, modules, fs, state):
    assert kernel_feature(facts(**overrides), Needs(config, modules, fs)).state == state


def test_absent_feature_fails_only_when_the_plan_needs_it():
    feature = kernel_feature(facts(), Needs(("CONFIG_VLAN_8021Q",), ("8021q",)))
    assert kernel_check(feature, what="802.1Q VLAN", needed=False, remedy="modprobe 8021q").status == "warn"
    needed = kernel_check(feature, what="802.1Q VLAN", needed=True, remedy="modprobe 8021q")
    assert needed.status == "fail"
    assert needed.message == "802.1Q VLAN: not in this kernel (the inventory needs it)"
    assert needed.evidence == {"kernel config CONFIG_VLAN_8021Q": "not set"}
