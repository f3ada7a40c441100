"""An apply killed midway (SIGTERM, SIGKILL), then run again: the next apply undoes what the killed one
journaled and converges. The kill comes while libvirt waits on an iSCSI portal that accepts the
connection and never answers, after the run already defined its NAT network and CHAP secret."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
import yaml

from tests.conftest import provision_bin
from tests.testhosts import HUNG_SERVER

pytestmark = [pytest.mark.libvirt, pytest.mark.netns]


def inventory(tmp_path, with_pool: bool) -> str:
    provision = {"virt_type": "qemu", "network": {"nat": [
        {"name": "guestnat", "bridge": "virbr7", "subnet": "192.168.177.0/24", "gateway": "192.168.177.1"}]}}
    if with_pool:
        provision["storage"] = [{"name": "san1", "type": "iscsi", "direct": True, "portal": "127.0.0.1:3260",
                                 "target": "iqn.2026-01.com.example:san1", "initiator": "iqn.2026-01.com.example:n1",
                                 "chap": {"username": "provision", "password_file": "/etc/provision/chap"}}]
    path = tmp_path / f"site-{with_pool}.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"n1": {"ansible_connection": "local"}},
                                            "vars": {"provision": provision}}}))
    return str(path)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_killed_apply_is_undone_and_the_next_converges(node, tmp_path, sig):
    node.write("/etc/provision/chap", "chap-secret-0123")
    hung = subprocess.Popen(["nsenter", "-t", str(node.pid), "-m", "-n", "-p", "python3", "-c", HUNG_SERVER, "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(100):
            if "127.0.0.1:22" in node.run("ss", "-Hltn").stdout:
                break
            time.sleep(0.05)
        # the hung server listens on port 22 of the node: the portal points there
        inv_path = tmp_path / "hung.yml"
        inv_path.write_text(open(inventory(tmp_path, True)).read().replace("127.0.0.1:3260", "127.0.0.1:22"))
        apply = subprocess.Popen(["nsenter", "-t", str(node.pid), "-m", "-n", "-p", provision_bin(), "apply", "-i",
                                  str(inv_path), "-o", "json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        state = node.path("/var/lib/provision/state.json")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until the run has reached its pool (network, secret done)
            try:
                journal = json.loads(state.read_text()).get("pending") or {}
            except (OSError, ValueError):
                journal = {}
            if any(r["kind"] == "pool" for r in journal.get("objects", [])):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the apply never reached its pool step")
        assert "guestnat" in node.virsh("net-list", "--name").stdout  # defined and started by the killed run
        os.killpg(apply.pid, sig)
        apply.communicate(timeout=30)
    finally:
        os.killpg(hung.pid, signal.SIGKILL)  # nsenter and the server it forked into the node
        hung.wait()

    result = node.provision("apply", "-i", inventory(tmp_path, False), "-o", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)["hosts"][0]
    assert "network:guestnat" in data["recovered"] and any(k.startswith("secret:") for k in data["recovered"])
    assert {(s["kind"], s["target"]): s["action"] for s in data["steps"]}[("network", "guestnat")] == "create"
    assert node.virsh("secret-list").stdout.strip() == ""  # the killed run's secret is gone
    assert node.virsh("pool-list", "--all", "--name").stdout.strip() == ""
    assert "pending" not in json.loads(node.path("/var/lib/provision/state.json").read_text())
    assert node.provision("verify", "-i", inventory(tmp_path, False)).returncode == 0
