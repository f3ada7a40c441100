"""Node steps, typed: a step runs in its declared phase and is handed every rendered file. A third-party
step (tests/fixture_plugins/after_files.py) runs after the files and stamps the digest of the nova drop-in
provision just wrote; its plan is tested without a node through provision.testing."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml

from provision.api import NodeStep
from provision.testing import load_step, plan_step
from tests.conftest import ROOT
from tests.fixture_plugins.after_files import NOVA, STAMP

AGENT = str(ROOT / "tests" / "fixture_plugins" / "steps" / "stamp_agent.py")


def applied(node, inv, plugin: str | None = None):
    """``provision apply`` on the node, with a test plugin loaded: (result, {(kind, target): action})."""
    env = f"export PROVISION_PLUGINS=tests.fixture_plugins.{plugin} PYTHONPATH={ROOT}" if plugin else ""
    result = node.provision("apply", "-i", inv, "-o", "json", before=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result, {(s["kind"], s["target"]): s["action"] for s in json.loads(result.stdout)["hosts"][0]["steps"]}


def inventory(tmp_path) -> str:
    path = tmp_path / "site.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"n1": {"ansible_connection": "local"}},
                                            "vars": {"provision": {"virt_type": "qemu"}}}}))
    return str(path)


@pytest.mark.libvirt
@pytest.mark.netns
def test_a_step_after_the_files_acts_on_what_was_just_written(node, tmp_path):
    inv = inventory(tmp_path)
    _, steps = applied(node, inv, "after_files")
    assert steps[("stamp", STAMP)] == "create" and steps[("file", NOVA)] == "create"
    written = node.path(NOVA).read_bytes()
    assert node.path(STAMP).read_text() == hashlib.sha256(written).hexdigest()  # it ran after the file was there
    _, steps = applied(node, inv, "after_files")
    assert set(steps.values()) == {"unchanged"}


def test_a_steps_plan_is_tested_without_a_node(tmp_path):
    watched, stamp = tmp_path / "nova.conf", tmp_path / "stamp"
    step = NodeStep("stamp", AGENT, {"watch": str(watched), "stamp": str(stamp)}, phase="after_files")
    assert plan_step(step)["changes"] == [{"target": str(stamp), "action": "create", "why": "its file is written first"}]
    watched.write_text("[libvirt]\n")
    module = load_step(step)
    module["apply"](step.spec, {}, {})
    assert plan_step(step) == {"changes": [], "refused": []}
    watched.write_text("[libvirt]\nvirt_type = qemu\n")
    assert plan_step(step)["changes"][0]["action"] == "update"


def test_a_step_module_is_held_to_the_contract(tmp_path):
    bad = tmp_path / "bad_agent.py"
    bad.write_text("import requests\n\ndef plan(spec, owned, context):\n    return {}\n")
    with pytest.raises(AssertionError, match="imports requests, which a node may not have"):
        load_step(NodeStep("bad", str(bad), {}))
    bad.write_text("def plan(spec, owned, context):\n    return {'changes': []}\n")
    with pytest.raises(AssertionError, match="lacks snapshot, apply, restore"):
        load_step(NodeStep("bad", str(bad), {}))
    with pytest.raises(AssertionError, match="lacks snapshot, apply, restore, probes, confirm"):
        load_step(NodeStep("bad", str(bad), {}, guarded=True))


def test_a_step_declares_a_phase_it_can_run_in():
    with pytest.raises(ValueError, match="phase must be one of before_objects, after_files"):
        NodeStep("x", AGENT, {}, phase="whenever")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a guarded step runs before_objects"):
        NodeStep("x", AGENT, {}, guarded=True, phase="after_files")


@pytest.mark.libvirt
@pytest.mark.netns
def test_a_plugins_libvirt_kind_is_defined_kept_and_removed(node, tmp_path):
    """nwfilter, from tests/fixture_plugins/nwfilter.py: no edit of the core."""
    inv = inventory(tmp_path)
    _, steps = applied(node, inv, "nwfilter")
    assert steps[("nwfilter", "provision-test-clean")] == "create"
    assert "provision-test-clean" in node.virsh("nwfilter-list").stdout
    _, steps = applied(node, inv, "nwfilter")
    assert set(steps.values()) == {"unchanged"}
    verify = node.provision("verify", "-i", inv, before=f"export PROVISION_PLUGINS=tests.fixture_plugins.nwfilter PYTHONPATH={ROOT}")
    assert verify.returncode == 0, verify.stdout
    _, steps = applied(node, inv)  # the plugin is not loaded: its object is removed
    assert steps[("nwfilter", "provision-test-clean")] == "remove"
    assert "provision-test-clean" not in node.virsh("nwfilter-list").stdout


def test_a_kind_two_plugins_describe_is_refused(cli, tmp_path):
    result = cli("apply", "--check", "-i", inventory(tmp_path),
                 env={"PROVISION_PLUGINS": "tests.fixture_plugins.nwfilter,tests.fixture_plugins.nwfilter_again"})
    assert result.exit_code == 2
    assert "libvirt kind 'nwfilter' is described by both tests.fixture_plugins.nwfilter and tests.fixture_plugins.nwfilter_again" in result.stderr


def test_a_step_spec_that_is_not_json_data_is_refused():
    with pytest.raises(ValueError, match=r"^NodeStep x: spec is not JSON data \(Object of type bytes is not JSON "
                                         r"serializable\); a node is sent plain data only$"):
        NodeStep("x", AGENT, {"key": b"raw"})
