"""Pieces of the apply agent that need no node: backups pruning, and the object diff."""

import xml.etree.ElementTree as ET

from provision.node import objects, undo
from provision.node import state as node_state


def test_only_the_newest_runs_backups_are_kept_and_a_pending_one_never_goes(tmp_path, monkeypatch):
    monkeypatch.setattr(node_state, "STATE_DIR", str(tmp_path))
    runs = [f"20261204T1800{i:02d}Z-abcdef" for i in range(14)]
    for run in runs:
        (tmp_path / "backup" / run / "etc").mkdir(parents=True)
        (tmp_path / "backup" / run / "etc" / "x.conf").write_text(run)
    (tmp_path / "backup" / "stray-file").write_text("not a run")
    removed = node_state._prune_backups({"pending": {"run": runs[0]}}, keep=10)
    assert removed == runs[1:4]
    assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == sorted([runs[0], *runs[4:], "stray-file"])


def test_an_object_diff_shows_only_the_fields_provision_sets():
    live = ET.fromstring("<pool type='dir'><name>p</name><uuid>1b4e28ba-2fa1-11d2-883f-0016d3cca427</uuid>"
                         "<capacity unit='bytes'>0</capacity><target><path>/srv/old</path>"
                         "<permissions><mode>0711</mode></permissions></target></pool>")
    want = ET.fromstring("<pool type='dir'>\n  <name>p</name>\n  <target><path>/srv/new</path></target>\n</pool>")
    diff = objects._object_diff(live, want, "pool:p")
    assert diff.splitlines() == ["--- a/pool:p", "+++ b/pool:p", "@@ -1,6 +1,6 @@", '<pool type="dir">'.join([" ", ""]),
                                 "   <name>p</name>", "   <target>", "-    <path>/srv/old</path>", "+    <path>/srv/new</path>",
                                 "   </target>", " </pool>"]
    created = objects._object_diff(None, want, "pool:p").splitlines()
    assert created[:2] == ["--- /dev/null", "+++ b/pool:p"] and all(line.startswith("+") for line in created[2:] if line[:2] != "@@")


STEP_SOURCE = """
def restore(snapshot, spec):
    return ["eth9: " + snapshot] if snapshot == "refused" else []
"""


def test_an_undo_that_fails_is_reported_kept_for_the_next_run_and_never_counted_as_done(tmp_path, monkeypatch):
    """Files and node steps: only what was put back counts; the rest keeps its journal record and old state."""
    monkeypatch.setattr(node_state, "STATE_DIR", str(tmp_path))
    created, changed = tmp_path / "created.conf", tmp_path / "changed.conf"
    created.write_text("new")
    changed.write_text("new")
    state = {"files": {str(created): {"run": "r2"}, str(changed): {"run": "r2"}}, "steps": {"net": "new", "fs": "new"}}
    journal = {"run": "r2", "objects": [], "done": [
        {"target": str(created), "action": "create", "old_state": None},
        {"target": str(changed), "action": "update", "backup": str(tmp_path / "gone"), "old_mode": 0o644,
         "old_state": {"run": "r1"}}],
        "steps": [{"name": "net", "source": STEP_SOURCE, "spec": {}, "snapshot": "refused", "old_state": "old"},
                  {"name": "fs", "source": STEP_SOURCE, "spec": {}, "snapshot": "fine", "old_state": None}]}
    undone = undo._undo_all(state, journal)
    assert undone == [str(created), "fs"]
    assert journal["not_restored"] == [f"{changed}: its backup {tmp_path / 'gone'} is missing", "net: eth9: refused"]
    assert [r["target"] for r in journal["done"]] == [str(changed)] and [r["name"] for r in journal["steps"]] == ["net"]
    assert not created.exists() and changed.read_text() == "new"
    assert state == {"files": {str(changed): {"run": "r2"}}, "steps": {"net": "new"}}  # only what was undone moved back
    undo._settle(state, journal)
    assert state["pending"] is journal  # kept for the next run to retry
    saved = (tmp_path / "state.json").read_text()
    assert '"not_restored"' in saved and "net: eth9: refused" in saved


def test_the_state_record_carries_its_schema_and_a_newer_one_is_refused(tmp_path, monkeypatch):
    import json

    import pytest

    monkeypatch.setattr(node_state, "STATE_DIR", str(tmp_path))
    (tmp_path / "state.json").write_text(json.dumps({"files": {"/etc/x": {"run": "r1"}}}))  # an older record
    state = node_state._load_state()
    assert state["files"] == {"/etc/x": {"run": "r1"}}
    node_state._save_state(state)
    assert json.loads((tmp_path / "state.json").read_text())["schema"] == node_state.STATE_SCHEMA  # rewritten
    (tmp_path / "state.json").write_text(json.dumps({"schema": node_state.STATE_SCHEMA + 1, "files": {}}))
    with pytest.raises(node_state.NewerState, match=r"state\.json has schema 2, written by a newer provision \(this one "
                                               r"reads up to 1\); nothing was read or changed"):
        node_state._load_state()


def test_stopping_lets_only_not_running_or_gone_pass(monkeypatch):
    """libvirt's own words for an object that is not running or does not exist are as wanted; any other
    refusal (libvirtd down) is raised, never hidden."""
    import pytest

    said = {}

    def virsh(*args):
        raise objects.VirshError(said["message"])

    monkeypatch.setattr(objects, "virsh", virsh)
    names = objects.KINDS["network"]["verbs"]
    for message in ("Requested operation is not valid: network is not active",
                    "failed to get network 'x'\nNetwork not found: no network with matching name 'x'"):
        said["message"] = message
        objects._stop(names, "x")
    said["message"] = "failed to connect to the hypervisor"
    with pytest.raises(objects.VirshError, match="failed to connect to the hypervisor"):
        objects._stop(names, "x")
