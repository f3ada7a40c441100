"""The plugin system: specs documented, built-ins registered, third-party plugins loaded, typos caught."""

import inspect
import re

import pluggy
import pytest

from provision import hookspecs
from provision.errors import InputError
from provision.plugins import AUTOLOAD_OFF_ENV, DEFAULT_PLUGINS, EXTRA_PLUGINS_ENV, Hooks, make_plugin_manager

SPECS = [(name, fn) for name, fn in vars(hookspecs).items() if callable(fn) and hasattr(fn, "provision_spec")]


def test_there_are_hookspecs():
    assert {name for name, _ in SPECS} >= {"provision_probe", "provision_checks", "provision_virt_decision"}


@pytest.mark.parametrize(("name", "fn"), SPECS, ids=[n for n, _ in SPECS])
def test_every_hook_is_prefixed_typed_and_documented(name, fn):
    assert name.startswith("provision_")
    doc = inspect.getdoc(fn) or ""
    assert len(doc.splitlines()[0]) > 10, f"{name} has no summary line"
    sig = inspect.signature(fn)
    for param in sig.parameters:
        assert f":param {param}:" in doc, f"{name}: parameter {param} is undocumented"
    assert sig.return_annotation is not inspect.Signature.empty, f"{name} has no return type"
    assert ":return:" in doc
    firstresult = fn.provision_spec["firstresult"]
    said = re.findall(r"(Not firstresult|firstresult):", doc)  # the contract says which, in these words
    assert said == (["firstresult"] if firstresult else ["Not firstresult"]), (
        f"{name} is {'' if firstresult else 'not '}firstresult, and its documentation must say so once: {said}")


def test_hooks_are_documented_in_the_readme():
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    for name, _ in SPECS:
        assert f"`{name}`" in readme, f"README does not document {name}"


def test_builtins_are_registered_like_any_plugin(hooks):
    names = [name for name, _ in hooks.plugin_hooks()]
    assert names[: len(DEFAULT_PLUGINS)] == list(DEFAULT_PLUGINS)
    assert all(n.startswith("provision_plugins.") for n in DEFAULT_PLUGINS)


def test_check_ids_are_unique_across_plugins(hooks):
    ids = [i for part in hooks.pm.hook.provision_check_catalog() for i in part]
    assert len(ids) == len(set(ids))
    assert "kvm.api" in ids and "cpu.virt_extensions" in ids


def test_extra_plugin_by_env_and_autoload_switch(monkeypatch):
    monkeypatch.setenv(AUTOLOAD_OFF_ENV, "1")
    monkeypatch.setenv(EXTRA_PLUGINS_ENV, "tests.fixture_plugins.demo_checks")
    hooks = Hooks(make_plugin_manager())
    assert "demo.fails" in hooks.check_catalog
    assert hooks.probe_operations["demo.hostname"] == {"op": "read", "path": "/etc/hostname"}


def test_misspelt_hook_is_refused():
    with pytest.raises(pluggy.PluginValidationError, match="provision_chekcs"):
        make_plugin_manager(autoload=False, extra=("tests.fixture_plugins.misspelt",))


def test_unimportable_plugin_is_an_input_error():
    with pytest.raises(InputError, match="cannot import plugin 'no_such_plugin_xyz'"):
        make_plugin_manager(autoload=False, extra=("no_such_plugin_xyz",))


def test_entry_point_plugins_load_unless_autoload_is_off(monkeypatch, tmp_path):
    # a real installed distribution with an entry point in the provision.plugins group
    dist = tmp_path / "demo_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[provision.plugins]\ndemo = tests.fixture_plugins.demo_checks\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(AUTOLOAD_OFF_ENV, raising=False)
    assert "demo" in dict(Hooks(make_plugin_manager()).plugin_hooks())
    monkeypatch.setenv(AUTOLOAD_OFF_ENV, "1")
    assert "demo" not in dict(Hooks(make_plugin_manager()).plugin_hooks())


def test_the_probe_operations_are_listed_as_the_probe_has_them():
    """provision_probe's documentation and the README's hook table name exactly the probe's operations."""
    import provision.hookspecs as hookspecs
    from provision.node import PROBE, sources
    from tests.conftest import ROOT

    source = "".join(source for _, source in sources(PROBE))
    ops = set(re.findall(r"^def op_(\w+)\(", source, re.M)) | {"run"}  # run: started first, finished last
    documented = set(re.findall(r"``(\w+)``", inspect.getdoc(hookspecs.provision_probe).split("one of", 1)[1].split("(see")[0]))
    assert documented == ops
    row = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `provision_probe` |"))
    assert set(re.findall(r"`(\w+)`", row.split("what to read from a node", 1)[1])) == ops


def test_the_probe_operations_are_listed_alike_in_the_hookspec_and_the_readme():
    """Every operation the node's probe knows, and no other, in both lists (they are read by plugin authors)."""
    import re

    from provision import hookspecs
    from provision.node import probe
    from tests.conftest import ROOT

    known = set(probe.OPS) | {"run"}  # run is started before the others, outside OPS
    doc = hookspecs.provision_probe.__doc__ or ""
    listed = set(re.findall(r"``(\w+)``", doc.split("one of", 1)[1].split("(see", 1)[0]))
    assert listed == known
    row = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `provision_probe` |"))
    assert set(re.findall(r"`(\w+)`", row.split("(", 1)[1])) == known
