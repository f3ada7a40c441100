"""provision as a library: pipeline.preflight, render, apply and verify return the reports the CLI
prints, from the same options; bad input raises InputError; warnings go to ``warn``."""

import json

import pytest
import yaml

from provision import pipeline
from provision.errors import InputError
from provision.results import Report


def inventory(tmp_path, **provision):
    path = tmp_path / "site.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"n1": {"ansible_connection": "local"}},
                                            "vars": {"provision": {"virt_type": "qemu", **provision}}}}))
    return str(path)


def test_preflight_of_the_local_node_is_the_clis_report(cli):
    report = pipeline.preflight()
    assert isinstance(report, Report) and [h.host for h in report.hosts] == ["localhost"]
    assert report.hosts[0].reachable and report.hosts[0].decision.virt_type in ("kvm", "qemu")
    shown = json.loads(cli("preflight", "-o", "json").stdout)
    assert [c["id"] for c in shown["hosts"][0]["checks"]] == [c.id for c in report.hosts[0].checks]
    assert shown["hosts"][0]["decision"]["virt_type"] == report.hosts[0].decision.virt_type


def test_render_into_a_folder_and_in_memory(tmp_path):
    inv = inventory(tmp_path)
    done = pipeline.render(inventory=inv, out=tmp_path / "out")
    assert done.written and (tmp_path / "out" / "n1" / "manifest.json").exists()
    in_memory = pipeline.render(inventory=inv)
    assert [f.target for f in in_memory.files["n1"]] == [
        e["target"] for e in json.loads((tmp_path / "out" / "n1" / "manifest.json").read_text())["files"]]


def test_apply_check_and_verify_read_the_node_and_change_nothing(tmp_path, cli):
    inv = inventory(tmp_path)
    plan = pipeline.apply(inventory=inv, check=True)
    assert plan.exit_code in (0, 3) and plan.drift is None
    assert [r.host for r in plan.results] == ["n1"] and plan.results[0].reachable, plan.results[0].error
    shown = json.loads(cli("apply", "-i", inv, "--check", "-o", "json").stdout)
    assert shown == {**plan.as_dict(), "hosts": [{**plan.as_dict()["hosts"][0], "seconds": shown["hosts"][0]["seconds"]}]}
    report = pipeline.verify(inventory=inv)
    assert report.schema == "provision.verify/1" and [h.host for h in report.hosts] == ["n1"]


def test_bad_input_raises_and_warnings_go_to_warn(tmp_path):
    bad = inventory(tmp_path, virt_type="kvmm")
    with pytest.raises(InputError, match=r"host n1: provision\.virt_type: must be one of auto, kvm, qemu"):
        pipeline.preflight(inventory=bad)
    folder = tmp_path / "inv"
    (folder / "group_vars").mkdir(parents=True)
    (folder / "hosts.yml").write_text("all:\n  hosts:\n    n1: {ansible_connection: local}\n")
    (folder / "group_vars" / "comptue.yml").write_text("x: 1\n")
    said = []
    nodes = pipeline.select(inventory=str(folder), warn=said.append)
    assert [n.name for n in nodes] == ["n1"] and any("group comptue is not in the inventory" in w for w in said)
