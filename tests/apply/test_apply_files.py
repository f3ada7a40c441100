"""provision apply on the local node, in a private mount namespace with /etc and /var/lib overlaid:
files written atomically with their mode, backups, the state record, idempotence, --check and its exit
code, verify, removal, refusals, rollback and recovery from an interrupted run."""

from __future__ import annotations

import json
import os
import stat

import pytest
import yaml

from tests.conftest import provision_bin

NOVA = "/etc/nova/nova.conf.d/50-provision-libvirt.conf"
NETPLAN = "/etc/netplan/60-provision.yaml"
BRIDGE_XML = "/etc/provision/libvirt/network-br-x.xml"
STATE = "/var/lib/provision/state.json"


pytestmark = [pytest.mark.libvirt, pytest.mark.netns]




@pytest.fixture(autouse=True)
def ports(node):
    """eth0 and eth1 in the node, for the bridges' ports (the host network step makes the bridges)."""
    node.sh("ip link add eth0 type veth peer name eth0p && ip link add eth1 type veth peer name eth1p")


def inventory(tmp_path, bridges=("br-x",)) -> str:
    provision = {"virt_type": "qemu",
                 "network": {"bridges": [{"name": b, "interfaces": [f"eth{i}"]} for i, b in enumerate(bridges)]}}
    path = tmp_path / "site.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"n1": {"ansible_connection": "local"}},
                                            "vars": {"provision": provision}}}))
    return str(path)


def apply(node, inv, *args):
    result = node.provision("apply", "-i", inv, "-o", "json", *args)
    return result, (json.loads(result.stdout) if result.stdout.startswith("{") else None)


def actions(data, kind="file") -> dict[str, str]:
    return {s["target"]: s["action"] for s in data["hosts"][0]["steps"] if s["kind"] == kind}


def test_first_apply_creates_second_changes_nothing(node, tmp_path):
    inv = inventory(tmp_path)
    result, data = apply(node, inv)
    assert result.returncode == 0, result.stderr
    assert data["schema"] == "provision.apply/1"
    assert set(actions(data).values()) == {"create"} and {NOVA, NETPLAN, BRIDGE_XML} <= set(actions(data))
    netplan = node.path(NETPLAN)
    assert stat.S_IMODE(netplan.stat().st_mode) == 0o600 and netplan.stat().st_uid == 0
    assert "br-x" in netplan.read_text()
    assert "virt_type = qemu" in node.path(NOVA).read_text()
    state = json.loads(node.path(STATE).read_text())
    assert set(state["files"]) == set(actions(data)) and "pending" not in state
    assert actions(data, "network") == {"br-x": "create"}
    assert node.virsh("net-info", "br-x").stdout.split() == [
        "Name:", "br-x", "UUID:", *node.virsh("net-uuid", "br-x").stdout.split(), "Active:", "yes", "Persistent:",
        "yes", "Autostart:", "yes", "Bridge:", "br-x"]
    assert stat.S_IMODE(node.path(STATE).stat().st_mode) == 0o600
    before = {p: p.stat().st_mtime_ns for p in node.path("/etc/nova").rglob("*")}

    again, data = apply(node, inv)
    assert again.returncode == 0, again.stderr
    assert set(actions(data).values()) == {"unchanged"}
    assert {p: p.stat().st_mtime_ns for p in node.path("/etc/nova").rglob("*")} == before  # not even rewritten
    assert not node.path("/var/lib/provision/backup").exists() or not any(node.path("/var/lib/provision/backup").iterdir())


def test_check_reports_drift_with_exit_3_and_verify_names_it(node, tmp_path):
    inv = inventory(tmp_path)
    assert apply(node, inv)[0].returncode == 0
    node.write(NOVA, "[libvirt]\nvirt_type = kvm\n")  # someone edited it
    node.sh('chmod 644 "$1"', NETPLAN)  # and opened the netplan file to everyone
    result, data = apply(node, inv, "--check")
    assert result.returncode == 3, result.stderr
    steps = {s["target"]: s for s in data["hosts"][0]["steps"]}
    assert (steps[NOVA]["action"], steps[NOVA]["why"]) == ("update", "content differs")
    assert (steps[NETPLAN]["action"], steps[NETPLAN]["why"]) == ("update", "mode 0644, wants 0600")
    assert node.path(NOVA).read_text() == "[libvirt]\nvirt_type = kvm\n"  # --check changed nothing

    verify = node.provision("verify", "-i", inv, "-o", "json")
    assert verify.returncode == 1
    report = json.loads(verify.stdout)
    assert report["schema"] == "provision.verify/1"
    failing = {c["evidence"]["path"]: c["message"] for c in report["hosts"][0]["checks"] if c["status"] == "fail"}
    assert failing == {NOVA: f"{NOVA} differs (content differs)", NETPLAN: f"{NETPLAN} differs (mode 0644, wants 0600)"}

    result, data = apply(node, inv, "--diff")
    assert result.returncode == 0, result.stderr
    assert "-virt_type = kvm" in result.stdout.split("{", 1)[0] or "-virt_type = kvm" in result.stdout
    assert actions(json.loads(result.stdout[result.stdout.index('{\n  "schema"'):]))[NOVA] == "update"
    backups = list(node.path("/var/lib/provision/backup").rglob("50-provision-libvirt.conf"))
    assert len(backups) == 1 and backups[0].read_text() == "[libvirt]\nvirt_type = kvm\n"
    assert node.provision("verify", "-i", inv).returncode == 0


def test_a_file_no_longer_rendered_is_removed_only_when_unchanged(node, tmp_path):
    assert apply(node, inventory(tmp_path, bridges=("br-x", "br-y")))[0].returncode == 0
    other = "/etc/provision/libvirt/network-br-y.xml"
    assert node.path(other).exists()
    result, data = apply(node, inventory(tmp_path, bridges=("br-x",)))
    assert result.returncode == 0, result.stderr
    assert actions(data)[other] == "remove" and not node.path(other).exists()

    assert apply(node, inventory(tmp_path, bridges=("br-x", "br-y")))[0].returncode == 0
    node.write(other, "<network><name>hand-edited</name></network>\n")
    result, data = apply(node, inventory(tmp_path, bridges=("br-x",)))
    assert result.returncode == 1
    steps = {s["target"]: s for s in data["hosts"][0]["steps"]}
    assert steps[other]["action"] == "failed" and "changed since provision wrote it" in steps[other]["why"]
    assert "refused before any change" in data["hosts"][0]["error"]
    assert "hand-edited" in node.path(other).read_text()


def test_a_symlink_in_place_of_a_file_is_refused_and_nothing_changes(node, tmp_path):
    node.sh('mkdir -p "$(dirname "$1")" && ln -s /etc/shadow "$1"', NETPLAN)
    result, data = apply(node, inventory(tmp_path))
    assert result.returncode == 1
    steps = {s["target"]: s for s in data["hosts"][0]["steps"]}
    assert steps[NETPLAN]["action"] == "failed" and "is a symlink to /etc/shadow" in steps[NETPLAN]["why"]
    assert not node.path(NOVA).exists() and not node.path(STATE).exists()
    assert os.readlink(node.path(NETPLAN)) == "/etc/shadow"


def test_a_step_that_fails_rolls_back_the_run(node, tmp_path):
    inv = inventory(tmp_path)
    assert apply(node, inv)[0].returncode == 0
    node.write(NOVA, "edited\n")
    # /etc/provision/libvirt cannot hold files once it is a file: the later step fails after NOVA's update
    node.sh('rm -r "$1" && echo "not a folder" > "$1"', "/etc/provision/libvirt")
    result, data = apply(node, inv)
    assert result.returncode == 1
    acts = actions(data)
    assert acts[BRIDGE_XML] == "failed" and acts[NOVA] == "rolled back"
    assert node.path(NOVA).read_text() == "edited\n"  # put back as it was before this run
    assert "pending" not in json.loads(node.path(STATE).read_text())


def test_an_interrupted_run_is_undone_by_the_next(node, tmp_path):
    inv = inventory(tmp_path)
    assert apply(node, inv)[0].returncode == 0
    state = json.loads(node.path(STATE).read_text())
    # what a run killed right after writing a new file leaves: the journal, the file
    stray = "/etc/provision/libvirt/network-killed.xml"
    node.write(stray, "<network/>\n")
    state["pending"] = {"run": "killed", "done": [{"target": stray, "action": "create", "old_state": None}]}
    node.write(STATE, json.dumps(state))
    result, data = apply(node, inv)
    assert result.returncode == 0, result.stderr
    assert data["hosts"][0]["recovered"] == [stray] and not node.path(stray).exists()
    assert "pending" not in json.loads(node.path(STATE).read_text())


def test_two_applies_on_one_node_do_not_run_together(node, tmp_path):
    inv = inventory(tmp_path)
    holder = "mkdir -p /var/lib/provision && (flock /var/lib/provision/lock sleep 5 >/dev/null 2>&1 &) && sleep 0.5"
    result = node.provision("apply", "-i", inv, "-o", "json", before=holder)
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert "another provision apply is running on this node" in data["hosts"][0]["error"]
    assert not node.path(NOVA).exists()


def test_on_a_terminal_a_fleet_apply_shows_a_progress_bar(node, tmp_path):
    inv = tmp_path / "two.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"a": {"ansible_connection": "local"}, "b": {"ansible_connection": "local"}},
                                           "vars": {"provision": {"virt_type": "qemu"}}}}))
    from tests.conftest import provision_bin

    # script(1) gives the command a pseudo-terminal, as an operator's shell does
    result = node.run("script", "-qec", f"{provision_bin()} apply -i {inv} --check --forks 1", "/dev/null")
    assert result.returncode == 3
    assert "apply --check " in result.stdout and "━" in result.stdout
    assert "summary: create 6" in result.stdout


def test_a_temporary_file_a_killed_run_left_is_removed(node, tmp_path):
    stale = NOVA.rsplit("/", 1)[0] + "/.50-provision-libvirt.conf.provision-tmp"
    node.write(stale, "half written")
    result, data = apply(node, inventory(tmp_path))
    assert result.returncode == 0, result.stderr
    assert not node.path(stale).exists() and "virt_type = qemu" in node.path(NOVA).read_text()


# libuuid's clock, which Python's uuid.getnode() keeps where uuid-runtime is installed (Ceph's packages
# bring it): Ansible calls it when imported, on the controller, which for a local node is this node
CONTROLLER_ONLY = ("var-lib/upper/libuuid",)


def snapshot(node) -> dict[str, tuple]:
    """Every file and folder the node's overlays hold (what anything there wrote): kind, mode, owner, bytes."""
    found = {}
    for name in ("etc", "var-lib", "var-cache"):
        upper = node.base / name / "upper"
        for path in sorted(upper.rglob("*")):
            if str(path.relative_to(node.base)).startswith(CONTROLLER_ONLY):
                continue
            st = path.lstat()
            found[str(path.relative_to(node.base))] = (
                stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                path.read_bytes() if path.is_file() and not path.is_symlink() else None)
    return found


def test_check_diff_and_verify_leave_the_node_byte_for_byte_unchanged(node, tmp_path):
    inv = inventory(tmp_path)
    before = snapshot(node)
    for args in (("apply", "--check"), ("apply", "--check", "--diff"), ("verify",)):
        result = node.provision(*args, "-i", inv)
        assert result.returncode in (1, 3), (args, result.stderr)
        assert snapshot(node) == before, args
    assert not node.path("/var/lib/provision").exists()  # not even the state folder or its lock

    assert apply(node, inv)[0].returncode == 0
    node.write(NOVA, "[libvirt]\nvirt_type = kvm\n")  # drift, so that check and verify have something to say
    before = snapshot(node)
    for args in (("apply", "--check"), ("apply", "--check", "--diff"), ("verify",)):
        result = node.provision(*args, "-i", inv)
        assert result.returncode in (1, 3), (args, result.stderr)
        assert snapshot(node) == before, args


def test_check_waits_for_no_apply_but_says_when_one_holds_the_lock(node, tmp_path):
    inv = inventory(tmp_path)
    assert apply(node, inv)[0].returncode == 0
    # an apply in progress holds the lock exclusively: --check says so instead of reading a half-done state
    result = node.run("flock", "-x", "/var/lib/provision/lock", provision_bin(), "apply", "--check", "-i", inv)
    assert result.returncode == 1
    assert "another provision apply is running on this node (/var/lib/provision/lock is held)" in result.stdout + result.stderr
