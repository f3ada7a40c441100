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
        clashing.check_catalog
    assert str(err.value) == f"check id 'kvm.device' is declared by both provision_plugins.kvm and {CLASH}"


def test_a_settings_field_declared_twice_is_refused_naming_both_plugins(clashing):
    with pytest.raises(PluginError) as err:
        clashing.settings_model
    assert str(err.value) == (f"settings field 'hypervisor.virt_type' of {CLASH} clashes with 'hypervisor' of "
                              "provision_plugins.hypervisor")


def test_a_probe_key_gathered_differently_is_refused_naming_both_plugins(clashing):
    with pytest.raises(PluginError) as err:
        clashing.probe_operations
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
