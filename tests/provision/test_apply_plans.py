"""The apply agent's plans are pure: each decides from what was read of the node (``read_files``,
``read_objects``), so these run on recorded states, without root, a node or libvirt."""

from __future__ import annotations

import pytest

from provision.node import files, objects
from provision.node.state import _digest

NET = "<network><name>guestnat</name><bridge name='virbr7'/><ip address='192.168.177.1' netmask='255.255.255.0'/></network>"
LIVE_NET = ("<network><name>guestnat</name><uuid>1b4e28ba-2fa1-11d2-883f-0016d3cca427</uuid><bridge name='virbr7' "
            "stp='on'/><ip address='192.168.177.1' netmask='255.255.255.0'/></network>")
GUEST_ON_NET = "<domain><name>vm1</name><devices><interface type='network'><source network='guestnat'/></interface></devices></domain>"


def wanted(target: str, content: str, mode: str = "0644") -> dict:
    return {"target": target, "content": content, "mode": mode}


def test_files_are_planned_from_what_was_read():
    state = {"files": {
        "/etc/old-ours.conf": {"digest": _digest(b"ours\n"), "created": True},
        "/etc/old-edited.conf": {"digest": _digest(b"ours\n"), "created": True},
        "/etc/old-theirs.conf": {"digest": _digest(b"x\n"), "created": False},
        "/etc/old-gone.conf": {"digest": _digest(b"x\n"), "created": True},
    }}
    rendered = [wanted("/etc/new.conf", "a\n"), wanted("/etc/same.conf", "b\n"), wanted("/etc/edited.conf", "c\n"),
                wanted("/etc/mode.conf", "d\n", "0600"), wanted("/etc/link.conf", "e\n")]
    found = {
        "/etc/new.conf": None,
        "/etc/same.conf": {"data": b"b\n", "mode": 0o644},
        "/etc/edited.conf": {"data": b"changed by hand\n", "mode": 0o644},
        "/etc/mode.conf": {"data": b"d\n", "mode": 0o644},
        "/etc/link.conf": {"error": "/etc/link.conf is a symlink to /tmp/x; provision does not replace it"},
        "/etc/old-ours.conf": {"data": b"ours\n", "mode": 0o644},
        "/etc/old-edited.conf": {"data": b"edited\n", "mode": 0o644},
        "/etc/old-theirs.conf": {"data": b"x\n", "mode": 0o644},
        "/etc/old-gone.conf": None,
    }
    plan = {s["target"]: (s["action"], s["why"]) for s in files.plan(state, rendered, found)}
    assert plan == {
        "/etc/new.conf": ("create", "absent"),
        "/etc/same.conf": ("unchanged", ""),
        "/etc/edited.conf": ("update", "content differs"),
        "/etc/mode.conf": ("update", "mode 0644, wants 0600"),
        "/etc/link.conf": ("failed", "/etc/link.conf is a symlink to /tmp/x; provision does not replace it"),
        "/etc/old-ours.conf": ("remove", "no longer rendered"),
        "/etc/old-edited.conf": ("failed", "no longer rendered, but changed since provision wrote it: left as it is"),
        "/etc/old-theirs.conf": ("release", "no longer rendered; it was there before provision, so it stays as it is"),
        "/etc/old-gone.conf": ("remove", "no longer rendered; already gone"),
    }


def test_read_files_reads_regular_files_and_refuses_what_is_not_one(tmp_path):
    (tmp_path / "a.conf").write_text("a\n")
    (tmp_path / "a.conf").chmod(0o640)
    (tmp_path / "link.conf").symlink_to(tmp_path / "a.conf")
    found = files.read_files({"files": {}}, [wanted(str(tmp_path / n), "") for n in ("a.conf", "link.conf", "none.conf")])
    assert found[str(tmp_path / "a.conf")] == {"data": b"a\n", "mode": 0o640}
    assert "is a symlink to" in found[str(tmp_path / "link.conf")]["error"]
    assert found[str(tmp_path / "none.conf")] is None


def net(xml: str = NET) -> dict:
    return {"kind": "network", "label": "guestnat", "name": "guestnat", "xml": xml}


def planned(state: dict, found: dict, **kwargs) -> dict:
    return {s["key"]: (s["action"], s["why"], s["todo"]) for s in objects.plan_objects(state, [net()], found, **kwargs)}


def test_an_object_not_defined_is_created_started_and_autostarted():
    found = {"objects": {"network:guestnat": {"ident": "guestnat", "live": None}}, "guests": None}
    assert planned({}, found) == {"network:guestnat": ("create", "not defined", ["define", "start", "autostart"])}


def test_an_object_provision_did_not_define_is_never_touched():
    found = {"objects": {"network:guestnat": {"ident": "guestnat", "live": LIVE_NET, "active": True, "autostart": True}}}
    action, why, _ = planned({}, found)["network:guestnat"]
    assert (action, why) == ("failed", "a network of this name exists and provision did not define it; not touched")


@pytest.mark.parametrize("force", [False, True])
def test_a_running_network_a_guest_uses_is_redefined_only_with_force(force):
    changed = LIVE_NET.replace("192.168.177.1", "192.168.178.1")
    found = {"objects": {"network:guestnat": {"ident": "guestnat", "live": changed, "active": True, "autostart": True}},
             "guests": [("vm1", GUEST_ON_NET)]}
    action, why, todo = planned({"objects": {"network:guestnat": {}}}, found, force=force)["network:guestnat"]
    if force:
        assert action == "update" and "redefined only: running guests (vm1)" in why and todo == ["define"]
    else:
        assert action == "failed" and "running guests use it (vm1)" in why and "--force" in why


def test_a_running_network_no_guest_uses_is_restarted_and_an_unchanged_one_left_alone():
    changed = LIVE_NET.replace("192.168.177.1", "192.168.178.1")
    owned = {"objects": {"network:guestnat": {}}}
    found = {"objects": {"network:guestnat": {"ident": "guestnat", "live": changed, "active": True, "autostart": False}},
             "guests": [("vm2", "<domain><name>vm2</name><devices/></domain>")]}
    action, why, todo = planned(owned, found)["network:guestnat"]
    assert action == "update" and why.endswith("restarted (no running guest uses it)") and todo == ["define", "restart",
                                                                                                   "autostart"]
    found["objects"]["network:guestnat"].update(live=LIVE_NET, autostart=True)
    assert planned(owned, found)["network:guestnat"] == ("unchanged", "", [])


def test_what_libvirt_could_not_tell_fails_that_object_with_its_reason():
    found = {"objects": {"network:guestnat": {"error": "failed to connect to the hypervisor"}}}
    assert planned({}, found)["network:guestnat"][:2] == ("failed", "failed to connect to the hypervisor")


def test_a_secret_gets_its_value_set_when_the_value_file_changed_and_fails_without_one():
    secret = {"kind": "secret", "label": "ceph-nova", "usage": "client.nova secret", "value_file": "/etc/ceph/key",
              "xml": "<secret ephemeral='no' private='yes'><usage type='ceph'><name>client.nova secret</name></usage></secret>"}
    owned = {"objects": {"secret:ceph-nova": {"value_digest": "old"}}}
    live = "<secret ephemeral='no' private='yes'><uuid>u</uuid><usage type='ceph'><name>client.nova secret</name></usage></secret>"
    found = {"objects": {"secret:ceph-nova": {"ident": "u", "live": live, "value_digest": "new"}}}
    (step,) = objects.plan_objects(owned, [secret], found)
    assert (step["action"], step["todo"]) == ("update", ["set value"])
    found["objects"]["secret:ceph-nova"] = {"ident": "u", "live": live, "value_error": "the value file /etc/ceph/key is missing on the node"}
    (step,) = objects.plan_objects(owned, [secret], found)
    assert (step["action"], step["why"]) == ("failed", "the value file /etc/ceph/key is missing on the node")


def test_an_object_no_longer_rendered_is_removed():
    owned = {"objects": {"network:old": {"object": {"kind": "network", "name": "old"}}}}
    (step,) = objects.plan_objects(owned, [], {"objects": {}})
    assert (step["key"], step["action"], step["todo"]) == ("network:old", "remove", ["remove"])


def test_reading_an_object_where_libvirt_is_not_installed_finds_it_undefined(tmp_path, monkeypatch):
    """A bare node planned before its remedies install libvirt (apply --check): no virsh, nothing defined."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no virsh
    found = objects.read_objects([net()])
    assert found["objects"]["network:guestnat"] == {"ident": "guestnat", "live": None}
    assert planned({}, found)["network:guestnat"][:2] == ("create", "not defined")


READ_WITHOUT_DAEMON = """
import json
from provision.node import objects
print(json.dumps(objects.read_objects([{"kind": "network", "label": "guestnat", "name": "guestnat", "xml": "<network/>"}])))
"""


@pytest.mark.root
def test_reading_an_object_libvirt_cannot_answer_for_is_that_objects_error():
    """Only "not defined" (or no libvirt at all) reads as absent: a daemon that does not answer never makes
    an object look undefined, to be created over the one that is there. Here virsh runs where
    /run/libvirt is an empty folder (a mount namespace of the test's own): no daemon's socket."""
    import json
    import subprocess
    import sys

    done = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                           'mkdir -p /run/libvirt && mount -t tmpfs tmpfs /run/libvirt && exec "$@"', "sh",
                           sys.executable, "-c", READ_WITHOUT_DAEMON], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    entry = json.loads(done.stdout)["objects"]["network:guestnat"]
    assert list(entry) == ["error"] and "failed to connect to the hypervisor" in entry["error"], entry
