"""A logical pool on a loop device: built (the volume group made by libvirt's pool-build), started,
and when no longer rendered undefined with its volume group kept. This kernel has no device-mapper:
the preflight gate says so (kernel.device_mapper), and the operator lets the node through, since
a volume group works without it (logical volumes could not be activated)."""

from __future__ import annotations

import json

import pytest
import yaml

pytestmark = [pytest.mark.libvirt, pytest.mark.netns]


def inventory(tmp_path, device=None) -> str:
    storage = [{"name": "pvtest-vg", "type": "lvm", "devices": [device]}] if device else []
    path = tmp_path / "site.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"n1": {"ansible_connection": "local"}}, "vars": {"provision": {
        "virt_type": "qemu", "storage": storage}}}}))
    return str(path)


def test_a_logical_pool_is_built_started_and_its_data_kept_on_removal(node, tmp_path, loop):
    try:
        refused = node.provision("apply", "-i", inventory(tmp_path, loop), "-o", "json")
        assert refused.returncode == 1 and "kernel.device_mapper: " in json.loads(refused.stdout)["hosts"][0]["error"]

        result = node.provision("apply", "-i", inventory(tmp_path, loop), "-o", "json", "--ignore", "kernel.device_mapper")
        assert result.returncode == 0, result.stdout + result.stderr
        pools = {s["target"]: s["action"] for s in json.loads(result.stdout)["hosts"][0]["steps"] if s["kind"] == "pool"}
        assert pools == {"pvtest-vg": "create"}
        assert "State:          running" in node.virsh("pool-info", "pvtest-vg").stdout
        assert node.run("vgs", "--noheadings", "-o", "vg_name,pv_count", "pvtest-vg").stdout.split() == ["pvtest-vg", "1"]

        again = node.provision("apply", "-i", inventory(tmp_path, loop), "-o", "json", "--ignore", "kernel.device_mapper")
        assert {s["action"] for s in json.loads(again.stdout)["hosts"][0]["steps"]} == {"unchanged"}

        removed = node.provision("apply", "-i", inventory(tmp_path), "-o", "json")
        assert removed.returncode == 0, removed.stdout
        assert node.virsh("pool-list", "--all", "--name").stdout.strip() == ""
        assert node.run("vgs", "--noheadings", "-o", "vg_name", "pvtest-vg").stdout.split() == ["pvtest-vg"]  # kept
    finally:
        node.run("vgremove", "-f", "pvtest-vg")
        node.run("pvremove", "-f", loop)
