"""The plugin contract at start-up: what two plugins both claim is refused naming both; a plugin can be
blocked by name, as pytest's -p no:NAME."""

import subprocess

import pytest

from provision.plugins import Hooks, PluginError, make_plugin_manager
from tests.conftest import provision_bin

CLASH = "tests.fixture_plugins.clashing"


@pytest.fixture
def clashing():
    return Hooks(make_plugin_manager(autoload=False, extra=(CLASH,)))


def test_a_check_id_declared_twice_is_refused_naming_both_plugins(clashing):
    with pytest.raises(PluginError) as err:
        _ = clashing.check_catalog
    assert str(err.value) == f"check id 'kvm.device' is declared by both provision_plugins.kvm and {CLASH}"


def test_a_settings_field_declared_twice_is_refused_naming_both_plugins(clashing):
    with pytest.raises(PluginError) as err:
        _ = clashing.settings_model
    # the core's own setting is refused first: no plugin can redefine virt_type
    assert str(err.value) == f"settings field 'virt_type' of {CLASH} clashes with 'virt_type' of provision (core)"


def test_a_settings_field_inside_another_plugins_part_is_refused():
    from types import SimpleNamespace

    from provision.hookspecs import hookimpl

    pm = make_plugin_manager(autoload=False)
    pm.register(SimpleNamespace(provision_settings_schema=hookimpl(lambda: {"hypervisor.cpu_mode": (str, "x")})),
                name="nested")
    with pytest.raises(PluginError) as err:
        _ = Hooks(pm).settings_model
    assert str(err.value) == "settings field 'hypervisor.cpu_mode' of nested clashes with 'hypervisor' of " \
        "provision_plugins.hypervisor"


def test_a_probe_key_gathered_differently_is_refused_naming_both_plugins(clashing):
    with pytest.raises(PluginError) as err:
        _ = clashing.probe_operations
    assert str(err.value) == f"probe key 'cpu.info' is gathered differently by provision_plugins.cpu and {CLASH}"


def test_the_command_line_refuses_clashing_plugins_with_exit_2():
    result = subprocess.run([provision_bin(), "checks"], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "PROVISION_PLUGINS": CLASH, "PYTHONPATH": "."})
    assert result.returncode == 2
    assert "check id 'kvm.device' is declared by both" in result.stderr and "Traceback" not in result.stderr


def test_disable_plugin_blocks_a_plugin_by_name_and_refuses_an_unknown_one():
    shown = subprocess.run([provision_bin(), "--disable-plugin", "clock", "checks"], capture_output=True, text=True)
    assert shown.returncode == 0 and "clock." not in shown.stdout and "kvm.device" in shown.stdout
    both = subprocess.run([provision_bin(), "checks"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PROVISION_DISABLE_PLUGINS": "provision_plugins.clock,kvm"})
    assert both.returncode == 0 and "clock." not in both.stdout and "kvm.device" not in both.stdout
    unknown = subprocess.run([provision_bin(), "--disable-plugin", "nope", "checks"], capture_output=True, text=True)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == ("provision: error: PROVISION_DISABLE_PLUGINS / --disable-plugin: no plugin named "
                                      "nope; `provision plugins` lists them")


def test_the_built_in_decision_is_the_default_and_only_tryfirst_replaces_it():
    from provision.facts import Facts
    from tests.fixture_plugins.deciders import Ordinary, Replacing

    pm = make_plugin_manager(autoload=False)
    pm.register(Ordinary(), name="ordinary")
    facts = Facts({"cpu.info": {"text": "flags\t\t: fpu\n"}})
    decision = Hooks(pm).virt_decision(facts, {})
    assert decision.plugin == "provision_plugins.kvm" and decision.virt_type == "qemu"
    pm.register(Replacing(), name="replacing")
    decision = Hooks(pm).virt_decision(facts, {})
    assert (decision.plugin, decision.cpu_mode, decision.reasons) == ("replacing", "custom",
                                                                      ("the replacing plugin says so",))


def test_hooks_get_settings_with_defaults_without_an_inventory():
    result = subprocess.run([provision_bin(), "preflight", "-o", "json"], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "PROVISION_PLUGINS": "tests.fixture_plugins.documented",
                                 "PYTHONPATH": "."})
    import json

    checks = {c["id"]: c for c in json.loads(result.stdout)["hosts"][0]["checks"]}
    assert checks["documented.virt_type"]["message"] == "the settings ask for auto", result.stderr


def test_a_plugin_that_raises_is_its_checks_internal_error_and_the_rest_still_run():
    import json

    env = {"PATH": "/usr/bin:/bin", "PROVISION_PLUGINS": "tests.fixture_plugins.faulty", "PYTHONPATH": "."}
    result = subprocess.run([provision_bin(), "preflight", "-o", "json"], capture_output=True, text=True, env=env)
    assert result.returncode == 4, result.stderr
    host = json.loads(result.stdout)["hosts"][0]
    assert host["reachable"] is True  # a bad probe operation loses its own fact, not the node
    checks = {c["id"]: c for c in host["checks"]}
    assert checks["faulty.raises"]["status"] == "fail"
    assert checks["faulty.raises"]["message"] == ("internal error in plugin tests.fixture_plugins.faulty: "
                                                  "RuntimeError: the [plugin] fell over")
    assert checks["faulty.reads"]["message"].startswith("probe said: ")
    assert "kvm.device" in checks and "Traceback" not in result.stderr
    table = subprocess.run([provision_bin(), "preflight"], capture_output=True, text=True, env=env)
    assert table.returncode == 4 and "the [plugin] fell over" in table.stdout


def test_render_is_called_through_pluggy_so_fewer_arguments_and_wrappers_work(tmp_path):
    import yaml

    from provision.inventory.select import select_nodes
    from provision.stages.render import render_node
    from tests.fixture_plugins import argless_render

    pm = make_plugin_manager(autoload=False, extra=("tests.fixture_plugins.argless_render",))
    pm.register(argless_render.Wrapper(), name="wrapper")
    hooks = Hooks(pm)
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"n1": {"provision": {"virt_type": "qemu"}}}}}))
    node, = select_nodes(inventory=str(inv), hooks=hooks).nodes
    files = {f.target: f for f in render_node(node, None, hooks=hooks)}
    assert files["/etc/argless.conf"].plugin == "tests.fixture_plugins.argless_render"
    assert "/etc/nova/nova.conf.d/50-provision-libvirt.conf" in files
    assert argless_render.SEEN  # the wrapper ran around the plugins' calls


def test_a_probe_operation_that_is_not_json_data_is_refused_naming_the_plugin():
    """Operations travel to nodes as JSON: a set (or bytes, or an object) is refused when the plugins are
    loaded, never at the node or half-way through a fleet."""
    from types import SimpleNamespace

    from provision.hookspecs import hookimpl

    pm = make_plugin_manager(autoload=False)
    pm.register(SimpleNamespace(provision_probe=hookimpl(lambda: {"x.files": {"op": "exists", "path": {"/a", "/b"}}})),
                name="setty")
    with pytest.raises(PluginError) as err:
        _ = Hooks(pm).probe_operations
    assert str(err.value) == ("setty: probe operation 'x.files' is not JSON data (Object of type set is not JSON "
                              "serializable); a node is sent plain data only")
